"""The scanner: ``hookshield scan URL`` finds webhook abuse paths from outside, mTLS included."""

from hookshield.scanner.context import ScanConfig
from hookshield.scanner.engine import Unreachable, run_scan, scan
from hookshield.scanner.model import Report

__all__ = ["Report", "ScanConfig", "Unreachable", "run_scan", "scan"]
