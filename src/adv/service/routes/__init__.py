"""The service's endpoints, one APIRouter per module: analyze (POST /analyze, /analyze/batch) and
info (GET /health, /model)."""
