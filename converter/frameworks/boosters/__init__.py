"""XGBoost and LightGBM native model files: what both share (base), and one backend each (xgboost, lightgbm).

Nothing here imports xgboost or lightgbm at module level; the registry imports each backend for detection.
"""
