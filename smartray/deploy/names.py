"""Kubernetes name rules (apimachinery's validation), shared by the manifest checks."""

from __future__ import annotations

import re

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_LABEL_RE = re.compile(_DNS_LABEL)
_DNS1035_LABEL_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN_RE = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_QUALIFIED_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def dns1035_label_errors(value: str) -> list[str]:
    """What is wrong with `value` as a DNS-1035 label (Service names, KubeRay objects)."""
    problems = [] if len(value) <= 63 else ["must be no more than 63 characters"]
    if not _DNS1035_LABEL_RE.fullmatch(value):
        problems.append(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-',"
            " start with an alphabetic character, and end with an alphanumeric character"
        )
    return problems


def dns_label_errors(value: str) -> list[str]:
    """What is wrong with `value` as a DNS-1123 label (namespaces)."""
    problems = [] if len(value) <= 63 else ["must be no more than 63 characters"]
    if not _DNS_LABEL_RE.fullmatch(value):
        problems.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or"
            " '-', and must start and end with an alphanumeric character"
        )
    return problems


def dns_subdomain_errors(value: str) -> list[str]:
    """What is wrong with `value` as a DNS-1123 subdomain (most object names)."""
    problems = [] if len(value) <= 253 else ["must be no more than 253 characters"]
    if not _DNS_SUBDOMAIN_RE.fullmatch(value):
        problems.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters,"
            " '-' or '.', and must start and end with an alphanumeric character"
        )
    return problems


def path_segment_errors(value: str) -> list[str]:
    """What is wrong with `value` as a path segment (names of subresources)."""
    if value in (".", ".."):
        return [f"may not be {value!r}"]
    return [f"may not contain {c!r}" for c in "/%" if c in value]


def qualified_name_errors(value: str) -> list[str]:
    """What is wrong with `value` as a qualified name (label and annotation keys)."""
    prefix, _, name = value.rpartition("/")
    problems = []
    if "/" in prefix or (value.count("/") == 1 and not prefix):
        problems.append("a qualified name must be 'name' or 'prefix/name'")
    elif prefix:
        problems += [f"prefix part {p}" for p in dns_subdomain_errors(prefix)]
    if len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must"
            " start and end with an alphanumeric character"
        )
    return problems


def label_value_errors(value: str) -> list[str]:
    """What is wrong with `value` as a label value."""
    problems = [] if len(value) <= 63 else ["must be no more than 63 characters"]
    if value and not _QUALIFIED_NAME_RE.fullmatch(value):
        problems.append(
            "a valid label must be an empty string or consist of alphanumeric characters,"
            " '-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return problems
