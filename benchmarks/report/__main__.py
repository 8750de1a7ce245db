"""python -m benchmarks.report: see benchmarks/report/build.py."""
from benchmarks.report.build import main

main()
