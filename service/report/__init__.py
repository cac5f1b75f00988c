"""The evaluation report: from scored items to one JSON dict, rendered as Markdown, HTML and a PNG.

No FastAPI and no database here; `service/evaluate/job.py` builds the report, the evaluations
service renders it. Read in this order:

- `costs.py`: the cost model (one-time cost of an adapter, cost per query, break-even).
- `build.py`: `build_report`, the only place numbers are computed, and the JSON schema.
- `recommend.py`: each mode against the most accurate one, and which to use, in sentences.
- `notes.py`: the assumptions and notes the report states.
- `formatting.py`: numbers, money and verdicts in words, shared by every part.
- `tables.py` and `summary.py`: the sections' tables and sentences, shared by Markdown and HTML.
- `markdown.py`, `html.py` (+ `report.html.jinja`), `plot.py`: the renderers.
"""
