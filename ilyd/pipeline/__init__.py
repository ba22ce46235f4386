"""The real-time enrichment pipeline as plain classes (no threads of their own).

inbox → `Enricher` (domain → provider → Ily values) → `Writer` (sObject Collections,
≤200 per call, per-record outcomes, skip-if-unchanged, API budget) → inbox rows
confirmed. `Poller` feeds the inbox by SOQL when an org cannot stream. The actors in
`ilyd.actors.enricher`, `.writer` and `.poller` are thin shells around these.
"""
