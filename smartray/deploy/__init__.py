"""Kubernetes deployment helpers: manifests checked against their CRDs before they ship."""
