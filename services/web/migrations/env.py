from services.web.models import Model
from shared.migrations import run_env

run_env(Model.metadata)
