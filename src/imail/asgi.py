"""ASGI entry point for multi-process uvicorn (`imail serve --processes N --no-workers`)."""

from imail.config import get_settings
from imail.main import create_app, freeze_startup_heap

app = create_app(get_settings(), run_workers=False)
freeze_startup_heap()
