# imail API and workers. Build: `docker build -t imail .`; run the stack: `docker compose up` (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    # Without IMAIL_DATABASE_URL the embedded SQLite database (and its generated secret) live in /data.
    IMAIL_DATABASE_URL=sqlite+aiosqlite:////data/imail.db

RUN groupadd --system imail \
    && useradd --system --gid imail --create-home --home-dir /home/imail --shell /usr/sbin/nologin imail \
    && mkdir -p /data && chown imail:imail /data

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir -p src/imail && touch src/imail/__init__.py \
    && pip install -e . \
    && rm -rf src

# The repository itself, installed editable so src/ is imported in place and `imail db upgrade` finds
# /app/alembic beside it (imail.migrations looks two levels above the package).
COPY . .
RUN pip install --no-deps -e . \
    && python -c "import imail.migrations as m; assert (m.REPO_ROOT / 'alembic').is_dir(), m.REPO_ROOT"

USER imail
VOLUME ["/data"]
EXPOSE 8000

ENTRYPOINT ["imail"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
