"""Predicted customer lifetime value (CLV): BG/NBD expected transactions (userops.churn.bgnbd)
times Gamma-Gamma expected order value (gamma_gamma), backtested on a held-out period
(pipeline). Written to ml.clv_scores, ml.clv_model_fits and ml.clv_backtest_deciles."""
