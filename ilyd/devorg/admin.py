"""The admin API under /_devorg/: org settings and permissions, fault injection, token
expiry and revocation, and read-back of API calls and record history. Documented in
ADMIN.md. It has no authentication: devorg is a loopback test tool."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from cryptography import x509

from ilyd.devorg import bootstrap, convert, logins
from ilyd.devorg.dml import RecordError, WriteOp, save
from ilyd.devorg.ids import to18
from ilyd.devorg.org import OrgState
from ilyd.devorg.schema import OBJECT_PERMISSIONS, SYSTEM_PERMISSIONS
from ilyd.devorg.values import now, parse_datetime, to_json
from ilyd.devorg.web import Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

A = r"/_devorg"
ORG = A + r"/orgs/(?P<org>[\w-]+)"


def _problem(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


class Admin:
    """Handlers of the admin API for one DevOrg."""

    def __init__(self, dev: DevOrg) -> None:
        self.dev = dev

    def _org(self, request: Request) -> OrgState:
        org = self.dev.org_by_name(request.params["org"])
        if org is None:
            raise _AdminError(404, f"no org named {request.params['org']!r}")
        return org

    @staticmethod
    def _json(request: Request) -> Any:
        try:
            return json.loads(request.body or b"{}")
        except ValueError as exc:
            raise _AdminError(400, f"body is not JSON: {exc}") from None

    def wrap(self, fn: Any) -> Any:
        """Turn _AdminError into a JSON error response."""
        def handler(request: Request) -> Response:
            try:
                return fn(request)
            except _AdminError as exc:
                return _problem(exc.status, exc.message)
        return handler

    # -- orgs, settings, permissions -----------------------------------------------------
    def index(self, request: Request) -> Response:
        """GET /_devorg — the server and its orgs."""
        return json_response({"url": self.dev.url, "ca_file": str(self.dev.ca_file or "") or None,
                              "orgs": [self._org_json(s) for s in self.dev.states.values()]})

    def _org_json(self, org: OrgState) -> dict[str, object]:
        info = self.dev.info(org)
        return {**info.__dict__, "settings": org.settings.__dict__,
                "other_user_id": org.identity.other_user_id}

    def org(self, request: Request) -> Response:
        """GET /_devorg/orgs/{org}."""
        return json_response(self._org_json(self._org(request)))

    def settings(self, request: Request) -> Response:
        """GET or PATCH /_devorg/orgs/{org}/settings."""
        org = self._org(request)
        if request.method == "PATCH":
            body = self._json(request)
            try:
                unknown = org.settings.update(body)
            except (TypeError, ValueError) as exc:
                raise _AdminError(400, f"bad setting value: {exc}") from None
            if unknown:
                raise _AdminError(400, f"unknown settings: {', '.join(unknown)}")
            self.dev.persist_org(org)
        return json_response(org.settings.__dict__)

    def permissions(self, request: Request) -> Response:
        """GET or PATCH the integration user's system and object permissions (its
        profile's permission set)."""
        org = self._org(request)
        ps_id = org.identity.profile_ps_id
        if request.method == "PATCH":
            body = self._json(request)
            system = body.get("system") or {}
            objects = body.get("objects") or {}
            bad = [k for k in system if k not in SYSTEM_PERMISSIONS]
            bad += [p for perms in objects.values() for p in perms
                    if p not in (*OBJECT_PERMISSIONS, "PermissionsViewAllFields")]
            if bad:
                raise _AdminError(400, f"unknown permissions: {', '.join(bad)}")
            with org.lock:
                stamp = now()
                rows = []
                ps = dict(org.tables["PermissionSet"].live[ps_id])
                ps.update({k: bool(v) for k, v in system.items()}, SystemModstamp=stamp)
                org.tables["PermissionSet"].live[ps_id] = ps
                rows.append(("PermissionSet", ps_id, ps, False))
                for sobject, perms in objects.items():
                    rows.append(self._object_permission(org, ps_id, sobject, perms, stamp))
                if org.persistence is not None:
                    org.persistence(rows)
                org.permissions_changed()
        return json_response(self._permissions_json(org))

    @staticmethod
    def _object_permission(org: OrgState, ps_id: str, sobject: str, perms: dict[str, bool],
                           stamp: object) -> tuple[str, str, dict[str, object], bool]:
        table = org.tables["ObjectPermissions"].live
        existing = next((r for r in table.values() if r["ParentId"] == ps_id
                         and r["SobjectType"] == sobject), None)
        if existing is None:
            existing = bootstrap.blank("ObjectPermissions")
            existing.update(Id=org.ids.new("110"), ParentId=ps_id, SobjectType=sobject,
                            IsDeleted=False, CreatedDate=stamp, LastModifiedDate=stamp,
                            CreatedById=org.identity.user_id,
                            LastModifiedById=org.identity.user_id)
        rec = dict(existing)
        rec.update({k: bool(v) for k, v in perms.items()}, SystemModstamp=stamp)
        table[str(rec["Id"])] = rec
        return ("ObjectPermissions", str(rec["Id"]), rec, False)

    @staticmethod
    def _permissions_json(org: OrgState) -> dict[str, object]:
        ps = org.tables["PermissionSet"].live[org.identity.profile_ps_id]
        objects = {r["SobjectType"]: {p: r[p] for p in OBJECT_PERMISSIONS}
                   for r in org.tables["ObjectPermissions"].live.values()
                   if r["ParentId"] == org.identity.profile_ps_id}
        access = org.access(org.identity.user_id)
        return {"system": {p: ps[p] for p in SYSTEM_PERMISSIONS}, "objects": objects,
                "effective": {"system": sorted(access.system),
                              "readable_fields": sorted(access.readable_fields),
                              "editable_fields": sorted(access.editable_fields)}}

    # -- tokens --------------------------------------------------------------------------
    def expire_tokens(self, request: Request) -> Response:
        """POST /_devorg/orgs/{org}/tokens/expire {"refresh_tokens": false}."""
        org = self._org(request)
        body = self._json(request)
        count = self.dev.tokens.expire_org(org, refresh_too=bool(body.get("refresh_tokens")))
        self.dev.persist_tokens()
        return json_response({"expired_access_tokens": count})

    def revoke_token(self, request: Request) -> Response:
        """POST /_devorg/orgs/{org}/tokens/revoke {"token": "…"}."""
        self._org(request)
        token = str(self._json(request).get("token") or "")
        revoked = self.dev.tokens.revoke(token)
        self.dev.persist_tokens()
        return json_response({"revoked": revoked}, 200 if revoked else 404)

    def new_refresh_token(self, request: Request) -> Response:
        """POST /_devorg/orgs/{org}/tokens/refresh — mint another refresh token."""
        org = self._org(request)
        grant = self.dev.tokens.new_refresh(org, org.identity.user_id, org.identity.client_id)
        self.dev.persist_tokens()
        return json_response({"refresh_token": grant.token}, 201)

    def certificate(self, request: Request) -> Response:
        """PUT /_devorg/orgs/{org}/certificate — the connected app's X.509 cert (PEM) for
        the JWT bearer flow."""
        org = self._org(request)
        try:
            x509.load_pem_x509_certificate(request.body)
        except ValueError as exc:
            raise _AdminError(400, f"not a PEM certificate: {exc}") from None
        org.jwt_certificate = request.body
        self.dev.persist_org(org)
        return json_response({"registered": True})

    # -- read-back -----------------------------------------------------------------------
    def calls(self, request: Request) -> Response:
        """GET (counts), PATCH {"used": N} (set), DELETE (reset) the API call counter."""
        org = self._org(request)
        if request.method == "DELETE":
            org.usage.reset()
        elif request.method == "PATCH":
            org.usage.set_used(int(self._json(request).get("used", 0)))
        return json_response({"used": org.usage.used(), "limit": org.settings.api_limit,
                              "by_endpoint": dict(org.usage.by_endpoint)})

    def record(self, request: Request) -> Response:
        """GET a record as stored (every field, no FLS) with its history."""
        org = self._org(request)
        rid = to18(request.params["id"]) or ""
        found = org.find(rid)
        if found is None:
            raise _AdminError(404, f"no record {request.params['id']}")
        sobject, rec, deleted = found
        return json_response({"sobject": sobject, "deleted": deleted,
                              "record": {k: to_json(v) for k, v in rec.items()},
                              "history": org.history.get(rid, [])})

    def history(self, request: Request) -> Response:
        """GET /_devorg/orgs/{org}/records/{id}/history."""
        org = self._org(request)
        rid = to18(request.params["id"]) or ""
        return json_response(org.history.get(rid, []))

    # -- writes as someone else, seeding -------------------------------------------------
    def write(self, request: Request) -> Response:
        """POST …/records/{sobject} (create) or PATCH/DELETE …/records/{sobject}/{id},
        as the org's second user (`?as=integration` for the integration user)."""
        org = self._org(request)
        as_integration = request.arg("as") == "integration"
        user = org.identity.user_id if as_integration else org.identity.other_user_id
        sobject = request.params["sobject"]
        rid = request.params.get("id")
        if request.method == "POST":
            op = WriteOp("create", sobject, values=self._json(request))
        elif request.method == "PATCH":
            op = WriteOp("update", sobject, rid, self._json(request))
        else:
            op = WriteOp("delete", sobject, rid)
        result = save(org, user, [op], lock_share=0.0)[0]
        return json_response(result.as_dict(), 201 if result.success else 400)

    def creates(self, request: Request) -> Response:
        """POST /_devorg/creates {"creates": [{"org", "sobject", "values"}, …]}: many creates
        over any orgs in one request, each its own record-level save (and change event) as
        that org's second user, as if each came from a separate request. For load
        generators: one HTTP exchange per tick instead of one per record."""
        body = self._json(request)
        creates = body.get("creates") if isinstance(body, dict) else None
        if not isinstance(creates, list):
            raise _AdminError(400, 'body must be {"creates": [{"org", "sobject", "values"}]}')
        results: list[dict[str, object]] = []
        for item in creates:
            if not isinstance(item, dict) or not isinstance(item.get("values"), dict):
                raise _AdminError(400, "each create needs org, sobject and a values object")
            org = self.dev.org_by_name(str(item.get("org")))
            if org is None:
                raise _AdminError(404, f"no org named {item.get('org')!r}")
            op = WriteOp("create", str(item.get("sobject")), values=item["values"])
            results.append(save(org, org.identity.other_user_id, [op],
                                lock_share=0.0)[0].as_dict())
        return json_response({"results": results})

    def convert(self, request: Request) -> Response:
        """POST …/leads/{id}/convert {"account_id": optional, "converted_status": optional}
        — Salesforce's convertLead, as the org's second user (`?as=integration`)."""
        org = self._org(request)
        user = (org.identity.user_id if request.arg("as") == "integration"
                else org.identity.other_user_id)
        body = self._json(request)
        try:
            result = convert.convert_lead(
                org, user, request.params["id"], account_id=body.get("account_id") or None,
                converted_status=str(body.get("converted_status") or convert.CONVERTED_STATUS))
        except LookupError as exc:
            raise _AdminError(404, str(exc)) from None
        except RecordError as exc:
            return json_response({"success": False, "errors": [exc.as_dict()]}, 400)
        return json_response(result.as_dict())

    def logins(self, request: Request) -> Response:
        """GET (every LoginHistory row, newest first) or POST one login: a person using
        the account in a browser unless the body says otherwise."""
        org = self._org(request)
        if request.method == "POST":
            body = self._json(request)
            who = str(body.get("user_id") or "integration")
            user_id = {"integration": org.identity.user_id,
                       "other": org.identity.other_user_id}.get(who) or to18(who)
            if user_id is None or org.get("User", user_id) is None:
                raise _AdminError(400, f"no user {who!r} (integration, other or a User id)")
            login_type = str(body.get("login_type") or logins.UI)
            when = body.get("login_time")
            login_time = parse_datetime(str(when)) if when else now() - dt.timedelta(
                days=float(body.get("days_ago") or 0))
            if login_time is None:
                raise _AdminError(400, f"login_time is not an ISO 8601 date-time: {when}")
            default_app = "Browser" if login_type == logins.UI else logins.CONNECTED_APP
            try:
                rec = logins.record_login(
                    org, user_id, login_type=login_type,
                    application=str(body.get("application") or default_app),
                    status=str(body.get("status") or logins.SUCCESS),
                    source_ip=str(body.get("source_ip") or "203.0.113.7"),
                    login_time=login_time,
                    browser=str(body["browser"]) if body.get("browser") else (
                        "Chrome 131" if login_type == logins.UI else None))
            except ValueError as exc:
                raise _AdminError(400, str(exc)) from None
            return json_response({k: to_json(v) for k, v in rec.items()}, 201)
        rows = sorted(org.scan("LoginHistory"), key=lambda r: r["LoginTime"], reverse=True)
        return json_response([{k: to_json(v) for k, v in r.items()} for r in rows])

    def seed(self, request: Request) -> Response:
        """POST /_devorg/orgs/{org}/seed {"sobject": "Account", "count": N}."""
        org = self._org(request)
        body = self._json(request)
        sobject = str(body.get("sobject", "Account"))
        if sobject not in ("Account", "Lead"):
            raise _AdminError(400, "seed supports Account and Lead")
        bootstrap.seed(org, sobject, int(body.get("count", 0)))
        return json_response({"sobject": sobject, "total": len(org.tables[sobject].live)})

    # -- faults --------------------------------------------------------------------------
    def faults(self, request: Request) -> Response:
        """GET (list), POST (add one), DELETE (remove all) fault rules."""
        if request.method == "POST":
            try:
                fault = self.dev.faults.add(self._json(request))
            except (TypeError, ValueError) as exc:
                raise _AdminError(400, str(exc)) from None
            self._apply_lock_rows()
            return json_response(fault.as_dict(), 201)
        if request.method == "DELETE":
            self.dev.faults.remove()
            self._apply_lock_rows()
        return json_response([f.as_dict() for f in self.dev.faults.list()])

    def fault(self, request: Request) -> Response:
        """DELETE /_devorg/faults/{id}."""
        self.dev.faults.remove(int(request.params["id"]))
        self._apply_lock_rows()
        return json_response([f.as_dict() for f in self.dev.faults.list()])

    def _apply_lock_rows(self) -> None:
        rules = [f for f in self.dev.faults.list() if f.kind == "lock_row"]
        for state in self.dev.states.values():
            shares = [f.share for f in rules if f.org in (None, state.identity.name)]
            state.extra["lock_row_share"] = max(shares, default=0.0)


class _AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def register(router: Router, dev: DevOrg) -> None:
    """Add the /_devorg/ routes."""
    a = Admin(dev)
    for methods, pattern, fn in (
        ("GET", A, a.index),
        ("GET", A + "/orgs", a.index),
        ("GET", ORG, a.org),
        ("GET PATCH", ORG + "/settings", a.settings),
        ("GET PATCH", ORG + "/permissions", a.permissions),
        ("POST", ORG + "/tokens/expire", a.expire_tokens),
        ("POST", ORG + "/tokens/revoke", a.revoke_token),
        ("POST", ORG + "/tokens/refresh", a.new_refresh_token),
        ("PUT POST", ORG + "/certificate", a.certificate),
        ("GET PATCH DELETE", ORG + "/calls", a.calls),
        ("GET", ORG + r"/records/(?P<id>[a-zA-Z0-9]{15,18})", a.record),
        ("GET", ORG + r"/records/(?P<id>[a-zA-Z0-9]{15,18})/history", a.history),
        ("POST", ORG + r"/records/(?P<sobject>[A-Za-z]\w*)", a.write),
        ("PATCH DELETE", ORG + r"/records/(?P<sobject>[A-Za-z]\w*)/(?P<id>\w+)", a.write),
        ("POST", ORG + r"/leads/(?P<id>[a-zA-Z0-9]{15,18})/convert", a.convert),
        ("POST", ORG + "/seed", a.seed),
        ("POST", A + "/creates", a.creates),
        ("GET POST", ORG + "/logins", a.logins),
        ("GET POST DELETE", A + "/faults", a.faults),
        ("DELETE", A + r"/faults/(?P<id>\d+)", a.fault),
    ):
        router.add(methods, pattern, a.wrap(fn), "admin", "public")
