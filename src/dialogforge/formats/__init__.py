"""Training formats and dataset tools: export, validate, merge, dedup, report.

    from dialogforge import formats
    formats.export("samples.jsonl", "train.jsonl", "sharegpt")        # + dataset_info.json
    formats.validate("train.jsonl", "sharegpt")                        # ValidationReport
    formats.merge(["run1.jsonl", "run2.jsonl"], "all.jsonl")
    formats.dedup("all.jsonl", "dedup.jsonl", threshold=0.85)
    formats.report("dedup.jsonl", clusters="dedup.clusters.json")

Every format is an entry of `formats.registry.FORMATS` (export, validate and the CLI help
read that table; `register` adds one).
"""
from .conversation import Conversation, ConversionError, Message, ToolCall
from .dedup import dedup
from .export import EXPORT_FORMATS, export, merge_dataset_info
from .merge import merge
from .readers import read_record
from .registry import FormatSpec, register
from .report import report
from .select import Selection
from .validate import FORMATS, validate

__all__ = [
    "Conversation", "ConversionError", "Message", "ToolCall", "Selection", "read_record",
    "export", "validate", "merge", "dedup", "report", "merge_dataset_info", "FORMATS", "EXPORT_FORMATS",
    "FormatSpec", "register",
]
