"""The Ily field catalogue: every custom field ilyd creates and writes, declared once.

Each field is an `IlyField` (frozen). API names are `Ily_<Words_Joined>__c`, labels start
with "Ily " so admins find them together when sorting by label. The provisioner creates
them with `tooling_body()` (Tooling API CustomField); `ilyd fields package` writes them
with `ilyd.enrich.field_package` for admins who deploy by hand. Providers key their values
by `api_name`; `ilyd.enrich.values` coerces values to each field's type and size.

Salesforce's naming and size rules are enforced by tests/enrich/test_fields.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from ilyd.enrich.provider import MatchStatus

__all__ = [
    "CATALOGUE",
    "DATA_FIELDS",
    "DOMAIN",
    "LAST_ENRICHED",
    "MATCH_STATUS",
    "META_FIELDS",
    "SOURCE",
    "TECHNOLOGY_EVIDENCE",
    "FieldType",
    "IlyField",
    "by_api_name",
    "fields_for",
]

OBJECTS = ("Account", "Lead")


class FieldType(StrEnum):
    """Salesforce field types ilyd uses (names as in the Metadata API FieldType enum)."""

    TEXT = "Text"
    LONG_TEXT_AREA = "LongTextArea"
    PICKLIST = "Picklist"
    DATETIME = "DateTime"
    NUMBER = "Number"
    CURRENCY = "Currency"
    URL = "Url"


@dataclass(frozen=True)
class IlyField:
    """One custom field ilyd manages, with everything needed to create and fill it.

    `length` applies to Text and LongTextArea (and is 255, implicit, for Url);
    `precision`/`scale` to Number and Currency; `visible_lines` to LongTextArea;
    `picklist_values` to Picklist (restricted). `objects` lists the sObjects carrying it.
    """

    api_name: str
    label: str
    type: FieldType
    description: str
    help_text: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    visible_lines: int | None = None
    picklist_values: tuple[str, ...] = ()
    objects: tuple[str, ...] = OBJECTS

    @property
    def developer_name(self) -> str:
        """The name without `__c` (Tooling's `DeveloperName`)."""
        return self.api_name.removesuffix("__c")

    @property
    def max_chars(self) -> int | None:
        """How many characters a value may hold, for the text-like types."""
        if self.type is FieldType.URL:
            return 255
        return self.length if self.type in (FieldType.TEXT, FieldType.LONG_TEXT_AREA) else None

    def full_name(self, sobject: str) -> str:
        """`Account.Ily_Domain__c`: the name Tooling, Metadata and FieldPermissions use."""
        return f"{sobject}.{self.api_name}"

    def metadata(self) -> dict[str, object]:
        """The CustomFieldMetadata body, exactly the keys Salesforce expects for the type."""
        body: dict[str, object] = {
            "label": self.label,
            "type": str(self.type),
            "description": self.description,
            "inlineHelpText": self.help_text,
            "required": False,
            "externalId": False,
        }
        if self.type in (FieldType.TEXT, FieldType.LONG_TEXT_AREA):
            body["length"] = self.length
        if self.type is FieldType.LONG_TEXT_AREA:
            body["visibleLines"] = self.visible_lines
        if self.type in (FieldType.NUMBER, FieldType.CURRENCY):
            body["precision"] = self.precision
            body["scale"] = self.scale
        if self.type is FieldType.PICKLIST:
            body["valueSet"] = {
                "restricted": True,
                "valueSetDefinition": {
                    "sorted": False,
                    "value": [
                        {"fullName": value, "label": value, "default": False}
                        for value in self.picklist_values
                    ],
                },
            }
        return body

    def tooling_body(self, sobject: str) -> dict[str, object]:
        """The JSON body of `POST /tooling/sobjects/CustomField` creating this field."""
        if sobject not in self.objects:
            raise ValueError(f"{self.api_name} is not defined on {sobject}")
        return {"FullName": self.full_name(sobject), "Metadata": self.metadata()}


def _text(name: str, description: str, help_text: str, length: int = 255) -> IlyField:
    return IlyField(
        api_name=f"Ily_{name}__c", label="Ily " + name.replace("_", " "),
        type=FieldType.TEXT, description=description, help_text=help_text, length=length,
    )


def _long_text(name: str, description: str, help_text: str, length: int) -> IlyField:
    return IlyField(
        api_name=f"Ily_{name}__c", label="Ily " + name.replace("_", " "),
        type=FieldType.LONG_TEXT_AREA, description=description, help_text=help_text,
        length=length, visible_lines=5,
    )


def _number(name: str, description: str, help_text: str, *, currency: bool = False,
            precision: int = 18) -> IlyField:
    return IlyField(
        api_name=f"Ily_{name}__c", label="Ily " + name.replace("_", " "),
        type=FieldType.CURRENCY if currency else FieldType.NUMBER,
        description=description, help_text=help_text, precision=precision, scale=0,
    )


_BY = "Written by the ilyd enrichment connector; edits are overwritten."

DOMAIN = _text(
    "Domain",
    f"Registrable company domain ilyd enriched this record with (from Website, or a Lead's "
    f"Email), lower-case, punycode for international names. {_BY}",
    "The company domain ilyd looked up, e.g. acme.com.",
)
MATCH_STATUS = IlyField(
    api_name="Ily_Match_Status__c", label="Ily Match Status", type=FieldType.PICKLIST,
    description="Outcome of ilyd's last enrichment attempt: Matched (company found), "
    "Not Found (no data for the domain), Free Email (only a free or disposable mail "
    f"domain), Invalid Domain (no usable domain), Error (the source failed). {_BY}",
    help_text="Whether ilyd found company data for this record, and if not, why.",
    picklist_values=tuple(status.value for status in MatchStatus),
)
LAST_ENRICHED = IlyField(
    api_name="Ily_Last_Enriched__c", label="Ily Last Enriched", type=FieldType.DATETIME,
    description=f"When ilyd last wrote its fields on this record. {_BY}",
    help_text="When ilyd last updated the Ily fields of this record.",
)
SOURCE = _text(
    "Source",
    f"The enrichment source that answered (dataset, http, dns, or its configured name). {_BY}",
    "Which enrichment source the Ily values come from.",
    length=80,
)
COMPANY_NAME = _text("Company_Name", f"Company name from the enrichment source. {_BY}",
                     "The company's name according to the enrichment source.")
INDUSTRY = _text("Industry", f"Industry from the enrichment source. {_BY}",
                 "The company's industry according to the enrichment source.")
EMPLOYEE_COUNT = _number("Employee_Count", f"Estimated number of employees. {_BY}",
                         "Estimated number of employees of the company.")
EMPLOYEE_RANGE = _text("Employee_Range", f"Employee count band, e.g. 51-200. {_BY}",
                       "The company's size band, e.g. 51-200 employees.", length=40)
COUNTRY = _text("Country", f"Headquarters country, ISO 3166-1 alpha-2 where known. {_BY}",
                "Country of the company's headquarters.", length=80)
CLOUD_HOSTING_PROVIDER = _text(
    "Cloud_Hosting_Provider",
    f"Cloud or hosting providers serving the company's web properties, '; '-separated. {_BY}",
    "Where the company hosts its websites and applications, e.g. Amazon Web Services.",
)
CDN_PROVIDER = _text(
    "CDN_Provider", f"Content delivery networks in front of the company's sites. {_BY}",
    "Content delivery networks the company uses, e.g. Cloudflare, Akamai.",
)
DNS_PROVIDER = _text(
    "DNS_Provider", f"Authoritative DNS providers of the domain (from NS records). {_BY}",
    "Who hosts the company's DNS, e.g. Amazon Route 53.",
)
EMAIL_PROVIDER = _text(
    "Email_Provider", f"Mailbox provider of the domain (from MX, or SPF behind a gateway). {_BY}",
    "The company's email hosting, e.g. Google Workspace or Microsoft 365.",
)
EMAIL_SECURITY_PROVIDER = _text(
    "Email_Security_Provider", f"Email security gateway in front of the mailboxes (MX). {_BY}",
    "Email security gateway the company uses, e.g. Proofpoint, Mimecast.",
)
EMAIL_SENDING_SERVICES = _long_text(
    "Email_Sending_Services",
    f"Services allowed to send mail for the domain (SPF includes), '; '-separated. {_BY}",
    "Services that send email for the company, e.g. SendGrid, Mailchimp.",
    length=1000,
)
SAAS_PRODUCTS = _long_text(
    "SaaS_Products",
    f"SaaS products the domain is verified with (DNS TXT tokens), '; '-separated. {_BY}",
    "SaaS products the company uses, e.g. Atlassian, Slack, DocuSign.",
    length=4000,
)
TECHNOLOGIES = _long_text(
    "Technologies",
    f"Every detected product as 'Product (Category)', '; '-separated. {_BY}",
    "All technologies ilyd detected for the company, with their category.",
    length=32768,
)
MONTHLY_SPEND_ESTIMATE = _number(
    "Monthly_Spend_Estimate",
    f"Estimated monthly technology spend in the org's currency, where the source has one. {_BY}",
    "Estimated monthly spend on the detected technologies.",
    currency=True, precision=16,
)
TRAFFIC_RANK = _number("Traffic_Rank", f"Web traffic rank of the domain (1 = busiest). {_BY}",
                       "How busy the company's website is; 1 is the busiest.")
TECHNOLOGY_EVIDENCE = _long_text(
    "Technology_Evidence",
    f"The DNS records (MX, NS, SPF, TXT, CNAME) the technology fields rest on. {_BY}",
    "Which DNS records the technology fields were derived from, for auditing.",
    length=32768,
)

# ilyd's own bookkeeping, written on every outcome; never taken from a provider.
META_FIELDS: tuple[IlyField, ...] = (DOMAIN, MATCH_STATUS, LAST_ENRICHED, SOURCE)
# Company data, taken from a provider and cleared when the company is no longer known.
DATA_FIELDS: tuple[IlyField, ...] = (
    COMPANY_NAME, INDUSTRY, EMPLOYEE_COUNT, EMPLOYEE_RANGE, COUNTRY,
    CLOUD_HOSTING_PROVIDER, CDN_PROVIDER, DNS_PROVIDER, EMAIL_PROVIDER,
    EMAIL_SECURITY_PROVIDER, EMAIL_SENDING_SERVICES, SAAS_PRODUCTS, TECHNOLOGIES,
    MONTHLY_SPEND_ESTIMATE, TRAFFIC_RANK, TECHNOLOGY_EVIDENCE,
)
CATALOGUE: tuple[IlyField, ...] = META_FIELDS + DATA_FIELDS

_BY_API_NAME: Mapping[str, IlyField] = MappingProxyType({f.api_name: f for f in CATALOGUE})


def by_api_name() -> Mapping[str, IlyField]:
    """Every catalogue field by its API name (read-only)."""
    return _BY_API_NAME


def fields_for(sobject: str) -> tuple[IlyField, ...]:
    """The catalogue fields defined on `sobject`, in catalogue order (empty if none)."""
    return tuple(f for f in CATALOGUE if sobject in f.objects)
