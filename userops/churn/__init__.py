"""Churn scores (流失预警): features from dbt, a gradient-boosted classifier, two baselines.

Modules, each small and pure where possible:

- ``config``     thresholds and seed, read from the churn block of dbt_project.yml (one place)
- ``dataset``    read churn_features + churn_labels from DuckDB (read-only), time-based split
- ``bgnbd``      BG/NBD (Fader, Hardie & Lee 2005): log-likelihood, fit, P(alive), simulation
- ``models``     the gradient-boosted classifier and the recency baseline
- ``evaluation`` ROC AUC, PR AUC, Brier, top-decile lift, calibration table
- ``artefacts``  versioned model folders (model.pkl, metrics.json, config.json)
- ``pipeline``   train + evaluate, score the latest cutoff, write the ml.* warehouse tables
"""
