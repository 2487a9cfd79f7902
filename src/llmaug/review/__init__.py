"""`llmaug review`: see, curate and retrain on a run's synthetic data.

`rundata` reads run directories, `decisions` keeps review.jsonl (import-light, for the runner), `index` filters and
pages rows, `server` + `views` + templates/ + static/ are the web app, `retrain` and `export` use the curated data.
"""
