"""The Salesforce API version ilyd speaks unless an [[org]] sets `api_version`."""

from __future__ import annotations

__all__ = ["DEFAULT_API_VERSION"]

# Winter '27's version, served by every org once that release is out; Salesforce keeps
# serving a version for years after it ships, so a pinned default keeps working:
# https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_versions.htm
DEFAULT_API_VERSION = "68.0"
