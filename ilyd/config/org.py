"""The `[[org]]` spec: identity, login host, auth method and secret references."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ilyd.config.model import PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL, OrgConfig, OrgName
from ilyd.config.schema import (
    Field,
    Problems,
    Table,
    boolean,
    choice,
    is_loopback_host,
    optional,
    slug,
    string,
)
from ilyd.config.scope import scope_table
from ilyd.config.secrets import SecretKind, SecretRef
from ilyd.config.tables import DEFAULTS_FIELDS, path_field

AUTH_METHODS = ("refresh_token", "jwt", "client_credentials", "password")

_INLINE_FIX = (
    "secrets are never written inline in the config: put the value in a file readable"
    " only by ilyd (chmod 600) and set {key}_file, or use {key}_credential"
    " (systemd LoadCredential=) or {key}_env"
)
FORBIDDEN_INLINE = {
    key: _INLINE_FIX.format(key=key)
    for key in ("client_secret", "password", "refresh_token", "private_key", "access_token")
}


def _environment() -> Any:
    def convert(value: Any) -> str:
        text = string()(value)
        if text in ("production", "sandbox"):
            return text
        parts = urlsplit(text)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(
                "must be 'production', 'sandbox' or a login URL such as"
                f" 'https://mycompany.my.salesforce.com' (got {text!r})"
            )
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(
                f"must use https:// (got {text!r}); plain http is only allowed on loopback,"
                " for the devorg emulator"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"must be a bare origin without path or query (got {text!r})")
        return text.rstrip("/")

    return convert


def _login_host(environment: str) -> bool:
    """Whether `environment` is Salesforce's shared login host rather than a My Domain."""
    host = urlsplit(_login_url(environment)).hostname or ""
    return host.lower() in ("login.salesforce.com", "test.salesforce.com")


def _login_url(environment: str) -> str:
    return {"production": PRODUCTION_LOGIN_URL, "sandbox": SANDBOX_LOGIN_URL}.get(
        environment, environment
    )


# Each secret and the reference forms it accepts, most recommended first.
_SECRET_FORMS: dict[str, tuple[SecretKind, ...]] = {
    "client_secret": (SecretKind.FILE, SecretKind.CREDENTIAL, SecretKind.ENV),
    "private_key": (SecretKind.FILE, SecretKind.CREDENTIAL),
    "refresh_token": (SecretKind.FILE,),
    "password": (SecretKind.FILE, SecretKind.CREDENTIAL, SecretKind.ENV),
}

# What each auth method needs besides client_id.
_NEEDS: dict[str, tuple[str, ...]] = {
    "refresh_token": (),
    "jwt": ("username", "private_key"),
    "client_credentials": ("client_secret",),
    "password": ("username", "client_secret", "password"),
}


def _secret_fields(base_dir: Path) -> tuple[Field, ...]:
    fields = []
    for secret, kinds in _SECRET_FORMS.items():
        for kind in kinds:
            convert = path_field(base_dir) if kind is SecretKind.FILE else string()
            fields.append(Field(f"{secret}_{kind}", optional(convert), None))
    return tuple(fields)


def org_table(config_path: Path, state_dir: Path) -> Table[OrgConfig]:
    """The `[[org]]` spec of the config file `config_path`; relative paths resolve
    against its directory."""
    base_dir = config_path.resolve().parent

    def check(values: dict[str, Any], path: str, problems: Problems) -> None:
        refs = _collect_refs(values, path, problems)
        if values["auth"] == "refresh_token":
            refs["refresh_token"] = _refresh_token_ref(
                refs.get("refresh_token"), values["name"], state_dir, config_path)
        if values["auth"] == "client_credentials" and _login_host(values["environment"]):
            # Salesforce serves this grant only at the org's My Domain; login and
            # test.salesforce.com refuse it ("request not supported on this domain"),
            # https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm&type=5
            problems.add(f"{path}.environment", (
                f"auth = 'client_credentials' cannot use environment = "
                f"{values['environment']!r}: Salesforce serves that grant only at the org's"
                " My Domain; set environment to the My Domain URL, e.g."
                " 'https://mycompany.my.salesforce.com' (Setup > My Domain)"))
        for need in _NEEDS[values["auth"]]:
            if need == "username":
                if not values["username"]:
                    problems.add(f"{path}.username", f"required when auth = {values['auth']!r}")
            elif need not in refs:
                forms = " / ".join(f"{need}_{k}" for k in _SECRET_FORMS[need])
                problems.add(f"{path}", f"auth = {values['auth']!r} needs one of {forms}")
        for ref in refs.values():
            problem = ref.problem()
            if problem is not None and ref.missing and ref.is_missing():
                # Not a mistake: the file appears once the admin runs `ilyd connect`.
                problems.warn(f"{path}.{ref.key}", problem)
            elif problem is not None:
                problems.add(f"{path}.{ref.key}", problem)
        for ref in values["enrich"].resolved(base_dir).secret_refs():
            problem = ref.problem()
            if problem is not None:
                problems.add(f"{path}.{ref.key}", problem)
        for sobject, _ in values["scope"]:
            if sobject not in values["objects"]:
                problems.add(f"{path}.scope.{sobject}",
                             f"the org does not enrich {sobject} (objects ="
                             f" {list(values['objects'])})")
        ca_file = values["ca_file"]
        if ca_file is not None and not ca_file.is_file():
            problems.add(f"{path}.ca_file", f"{ca_file} does not exist or is not a file")
        values["_refs"] = refs

    def build(**values: Any) -> OrgConfig:
        refs: dict[str, SecretRef] = values.pop("_refs")
        return OrgConfig(
            name=OrgName(values["name"]),
            environment=values["environment"],
            login_url=_login_url(values["environment"]),
            auth=values["auth"],
            client_id=values["client_id"],
            username=values["username"],
            client_secret=refs.get("client_secret"),
            private_key=refs.get("private_key"),
            refresh_token=refs.get("refresh_token"),
            password=refs.get("password"),
            ca_file=values["ca_file"],
            enabled=values["enabled"],
            scope=values["scope"],
            **{f.name: values[f.name] for f in DEFAULTS_FIELDS if f.name != "enrich"},
            enrich=values["enrich"].resolved(base_dir),
        )

    return Table(
        fields=(
            Field("name", slug(), doc="unique slug used in ctl, logs and metrics"),
            Field("environment", _environment(), "production"),
            Field("auth", choice(*AUTH_METHODS), "refresh_token"),
            Field("client_id", string()),
            Field("username", optional(string()), None),
            *_secret_fields(base_dir),
            Field("ca_file", optional(path_field(base_dir)), None),
            Field("enabled", boolean(), True),
            Field("scope", scope_table(), (),
                  "per object, a SOQL condition: only matching records are enriched"),
            *DEFAULTS_FIELDS,
        ),
        build=build,
        forbidden=FORBIDDEN_INLINE,
        check=check,
    )


def _refresh_token_ref(given: SecretRef | None, name: str, state_dir: Path,
                       config_path: Path) -> SecretRef:
    """The org's refresh token: the file it names, else where `ilyd connect` stores it;
    a missing file means "not connected yet", and says how to connect."""
    if given is None:
        location = str(state_dir / "tokens" / f"{name}.refresh_token")
        given = SecretRef(SecretKind.FILE, location, "refresh_token_file")
    return replace(given, missing=(
        f"no refresh token at {given.location} yet: the org is not connected;"
        f" run `ilyd connect {name} --config {config_path}`"))


def _collect_refs(values: dict[str, Any], path: str, problems: Problems) -> dict[str, SecretRef]:
    refs: dict[str, SecretRef] = {}
    for secret, kinds in _SECRET_FORMS.items():
        given = [(kind, values[f"{secret}_{kind}"]) for kind in kinds]
        given = [(kind, value) for kind, value in given if value is not None]
        if len(given) > 1:
            keys = ", ".join(f"{secret}_{kind}" for kind, _ in given)
            problems.add(path, f"set only one of {keys}")
            continue
        if given:
            kind, value = given[0]
            refs[secret] = SecretRef(kind, str(value), f"{secret}_{kind}")
    return refs
