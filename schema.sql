-- sqlstore schema: the whole current schema. Every statement is idempotent (IF NOT EXISTS).
-- A fresh database gets this file and is recorded at the latest version; an older database
-- gets the numbered migrations in sqlstore/migrations.py instead, which end at this same shape.
-- Portable to stdlib SQLite 3.37+, libSQL (sqld, Turso Cloud) and the Turso engine (tursodb):
-- no recursive CTEs, no FTS5, no WITHOUT ROWID, no sha256().
-- Times are integer milliseconds since the epoch, UTC. JSON columns hold orjson text.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    applied_at  INTEGER NOT NULL
);

-- Team configurations (AutoGen Studio's job). config_hash is the hash of the canonical JSON.
CREATE TABLE IF NOT EXISTS teams (
    id           TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    name         TEXT,
    config       TEXT    NOT NULL,
    config_hash  TEXT    NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS teams_user ON teams (user_id, updated_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS teams_user_hash ON teams (user_id, config_hash, created_at, id);
CREATE INDEX IF NOT EXISTS teams_user_created ON teams (user_id, created_at, id);

-- A conversation, a thread, a team session: one row. root_id is the thread's own id for a
-- root and the root's id for every fork below it, so lineage needs no recursive query.
CREATE TABLE IF NOT EXISTS threads (
    id             TEXT    PRIMARY KEY,
    user_id        TEXT    NOT NULL,
    session_id     TEXT,
    agent_id       TEXT,
    team_id        TEXT    REFERENCES teams (id) ON DELETE CASCADE,
    title          TEXT,
    metadata       TEXT    NOT NULL DEFAULT '{}',
    parent_id      TEXT    REFERENCES threads (id) ON DELETE SET NULL,
    fork_seq       INTEGER,
    root_id        TEXT    NOT NULL,
    lineage        TEXT,
    message_count  INTEGER NOT NULL DEFAULT 0,
    last_seq       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS threads_conversation
    ON threads (user_id, session_id, agent_id)
    WHERE session_id IS NOT NULL AND agent_id IS NOT NULL;
-- lineage: the JSON-quoted ids of the thread's ancestors and itself, root first, each followed
-- by a comma ('"root","fork",'); NULL means a root. Deleting a thread re-roots its forks'
-- subtrees with one UPDATE on this prefix (no recursive query). Owned by domains/threads.py.
CREATE INDEX IF NOT EXISTS threads_updated ON threads (updated_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS threads_user_updated ON threads (user_id, updated_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS threads_agent_updated ON threads (agent_id, updated_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS threads_root ON threads (root_id);
CREATE INDEX IF NOT EXISTS threads_parent ON threads (parent_id);
CREATE INDEX IF NOT EXISTS threads_team ON threads (team_id);

-- Runs of a team session (or of any thread).
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT    PRIMARY KEY,
    thread_id   TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    user_id     TEXT,
    status      TEXT    NOT NULL DEFAULT 'created',
    task        TEXT,
    result      TEXT,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_thread ON runs (thread_id, created_at, id);

-- Messages: seq is the per-thread index, allocated inside SQL as the thread's highest seq
-- ever + 1 (threads.last_seq is the high-water mark, never lowered by a delete).
-- messages_thread_time serves the reads in time order across a session's conversations
-- (conversations.session): each reads only its newest `limit`, whatever the history.
CREATE TABLE IF NOT EXISTS messages (
    id          TEXT    PRIMARY KEY,
    thread_id   TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    role        TEXT    NOT NULL,
    content     TEXT    NOT NULL,
    metadata    TEXT    NOT NULL DEFAULT '{}',
    run_id      TEXT    REFERENCES runs (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    UNIQUE (thread_id, seq)
);
CREATE INDEX IF NOT EXISTS messages_run ON messages (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_thread_time ON messages (thread_id, created_at, id);

CREATE TABLE IF NOT EXISTS feedback (
    id          TEXT    PRIMARY KEY,
    thread_id   TEXT    REFERENCES threads (id) ON DELETE CASCADE,
    message_id  TEXT,
    user_id     TEXT,
    agent_id    TEXT,
    rating      INTEGER CHECK (rating IS NULL OR rating BETWEEN 1 AND 5),
    comment     TEXT,
    correction  TEXT,
    query       TEXT,
    response    TEXT,
    metadata    TEXT    NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_thread ON feedback (thread_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS feedback_user ON feedback (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS feedback_agent ON feedback (agent_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback (created_at DESC, id DESC);

-- Human-in-the-loop approvals (suspended states) with a time to live.
CREATE TABLE IF NOT EXISTS approvals (
    id          TEXT    PRIMARY KEY,
    thread_id   TEXT    REFERENCES threads (id) ON DELETE CASCADE,
    agent_id    TEXT,
    user_id     TEXT,
    node        TEXT,
    state       TEXT    NOT NULL,
    metadata    TEXT    NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS approvals_thread ON approvals (thread_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS approvals_agent ON approvals (agent_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS approvals_expiry ON approvals (expires_at);
CREATE INDEX IF NOT EXISTS approvals_created ON approvals (created_at DESC, id DESC);

-- Graph checkpoints (generic and LangGraph). thread_id is the caller's thread key; it is
-- not a foreign key, since a LangGraph thread need not be a row of threads.
CREATE TABLE IF NOT EXISTS checkpoints (
    thread_id      TEXT    NOT NULL,
    checkpoint_ns  TEXT    NOT NULL DEFAULT '',
    checkpoint_id  TEXT    NOT NULL,
    parent_id      TEXT,
    type           TEXT,
    payload        BLOB,
    metadata       TEXT    NOT NULL DEFAULT '{}',
    created_at     INTEGER NOT NULL,
    run_id         TEXT,
    blob_versions  TEXT,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
-- run_id: metadata's run_id, kept apart for delete_for_runs. blob_versions: JSON
-- {channel: version} of the channel values held in checkpoint_blobs (LangGraph), NULL otherwise.
CREATE INDEX IF NOT EXISTS checkpoints_thread ON checkpoints (thread_id, checkpoint_id);
CREATE INDEX IF NOT EXISTS checkpoints_run ON checkpoints (run_id) WHERE run_id IS NOT NULL;
-- Every thread's checkpoints newest first (LangGraph alist(None)): pages walk this index
-- instead of sorting the whole table for each page.
CREATE INDEX IF NOT EXISTS checkpoints_newest ON checkpoints (checkpoint_id, thread_id, checkpoint_ns);

-- Channel values stored once per (channel, version) and shared by every checkpoint of the
-- thread that holds that version, so a checkpoint does not repeat unchanged state.
CREATE TABLE IF NOT EXISTS checkpoint_blobs (
    thread_id      TEXT    NOT NULL,
    checkpoint_ns  TEXT    NOT NULL DEFAULT '',
    channel        TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    value          BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);

-- Tombstones: what was deleted and when, so a write that was issued before a delete but
-- lands after it does not bring the data back. kind: 'conversation' (key: the JSON array
-- [user_id, session_id, agent_id]) or 'checkpoints' (key: a LangGraph thread id). Pruned
-- by sqlstore.retention after a horizon (a write later than that is a new write).
CREATE TABLE IF NOT EXISTS tombstones (
    kind        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    deleted_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS tombstones_deleted ON tombstones (deleted_at);

CREATE TABLE IF NOT EXISTS checkpoint_writes (
    thread_id      TEXT    NOT NULL,
    checkpoint_ns  TEXT    NOT NULL DEFAULT '',
    checkpoint_id  TEXT    NOT NULL,
    task_id        TEXT    NOT NULL,
    idx            INTEGER NOT NULL,
    channel        TEXT    NOT NULL,
    type           TEXT,
    value          BLOB,
    task_path      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);

-- Agentomatic's invocation logs, log analyses and optimization runs, kept for its drop-in
-- store (sqlstore.compat.agentomatic). resource_name is the agent (or plugin, pipeline...).
CREATE TABLE IF NOT EXISTS invocation_logs (
    id             TEXT    PRIMARY KEY,
    resource_type  TEXT    NOT NULL DEFAULT 'agent',
    resource_name  TEXT    NOT NULL,
    thread_id      TEXT,
    run_id         TEXT,
    endpoint       TEXT,
    input          TEXT    NOT NULL DEFAULT '{}',
    output         TEXT    NOT NULL DEFAULT '{}',
    metadata       TEXT    NOT NULL DEFAULT '{}',
    error          TEXT,
    duration_ms    REAL,
    status         TEXT,
    created_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS invocation_logs_created ON invocation_logs (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS invocation_logs_resource
    ON invocation_logs (resource_name, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS invocation_logs_thread
    ON invocation_logs (thread_id, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS log_analyses (
    id               TEXT    PRIMARY KEY,
    resource_type    TEXT    NOT NULL DEFAULT 'agent',
    resource_name    TEXT    NOT NULL,
    score            REAL,
    summary          TEXT,
    status           TEXT,
    recommendations  TEXT    NOT NULL DEFAULT '[]',
    metadata         TEXT    NOT NULL DEFAULT '{}',
    created_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS log_analyses_resource
    ON log_analyses (resource_name, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS log_analyses_created ON log_analyses (created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS optimization_runs (
    id               TEXT    PRIMARY KEY,
    experiment_id    TEXT    NOT NULL,
    agent_name       TEXT    NOT NULL,
    baseline_score   REAL,
    best_score       REAL,
    prompt_versions  TEXT    NOT NULL DEFAULT '{}',
    score_history    TEXT    NOT NULL DEFAULT '[]',
    learnings        TEXT    NOT NULL DEFAULT '[]',
    artefacts        TEXT    NOT NULL DEFAULT '{}',
    metadata         TEXT    NOT NULL DEFAULT '{}',
    created_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS optimization_runs_agent
    ON optimization_runs (agent_name, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS optimization_runs_experiment
    ON optimization_runs (experiment_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS optimization_runs_created ON optimization_runs (created_at DESC, id DESC);
