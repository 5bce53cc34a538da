"""Task metrics over stored generations: text overlap (`text`), structured output
(`structured`), code with pass@k in a sandbox (`passk`, `sandbox`), and their uncertainty
(`uncertainty`). Standard implementations (rouge-score, sacrebleu, jsonschema), not hand-rolled."""
