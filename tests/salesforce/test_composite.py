"""The Composite call's query URLs: each query quoted as the standard library's
`urlencode` quotes a form value."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from ilyd.salesforce.composite import form_quote


@settings(max_examples=300)
@given(st.text() | st.text(st.characters(max_codepoint=127)))
def test_a_query_is_quoted_byte_for_byte_as_urlencode_quotes_it(text: str) -> None:
    assert "q=" + form_quote(text) == urlencode({"q": text})


def test_a_writers_query_with_quotes_spaces_and_accents_is_quoted_as_urlencode_does(
        ) -> None:
    query = ("SELECT Id, Ily_Company_Name__c FROM Lead WHERE Id IN ('00Q000000000001AAA')"
             " AND (Company != 'Café, \"Ltd\" ~ 100%')")
    assert "q=" + form_quote(query) == urlencode({"q": query})
