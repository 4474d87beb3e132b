"""Annotating and reviewing: ontology, label formats, the label ledger, review.

Imported eagerly: `consensus`, `export` and `review` are also the names of the modules
that define them, and a name loaded on first use would lose to its module.
"""

from smartray.annotate.consensus import IOU, MIN_AGREEMENT, consensus
from smartray.annotate.export import CHUNK, export
from smartray.annotate.ledger import import_labels, register, registered
from smartray.annotate.model import EDGE_FRACTION, EDGE_PX
from smartray.annotate.ontology import load_ontology
from smartray.annotate.review import issue_queue, review

__all__ = [
    "CHUNK",
    "EDGE_FRACTION",
    "EDGE_PX",
    "IOU",
    "MIN_AGREEMENT",
    "consensus",
    "export",
    "import_labels",
    "issue_queue",
    "load_ontology",
    "register",
    "registered",
    "review",
]
