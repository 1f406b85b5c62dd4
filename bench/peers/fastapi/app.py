"""A FastAPI peer for runnel's load tests, written the usual way.

At startup it builds an SQLite FTS5 index (Python's sqlite3, in a temporary
file) of a corpus in runnel's JSONL form (bench/gencorpus output: one
article a line with slug, title, tags and a Markdown body, split into
passages at "## " headings). For each question it does runnel's search in
SQL: the question's words OR-ed in an FTS5 MATCH, ranked by bm25 with column
weights title 10, heading 4, tags 8, body 1, top 8 passages. It streams the
answer as NDJSON with a StreamingResponse over an async generator: query,
tags, titles, sources (the top articles), then TOKENS tokens INTERVAL apart
(asyncio.sleep), each token's text the time it was emitted
("t=<unix ns> "), then done. One uvicorn worker.

    python3 app.py --corpus corpus.jsonl --port 18092 --tokens 200 --interval 10ms

Each option can also come from the environment: RUNNEL_CORPUS,
RUNNEL_PORT, RUNNEL_TOKENS, RUNNEL_INTERVAL. Needs Debian's python3-fastapi
and python3-uvicorn; bench/run-load.sh installs them when missing.
"""

import argparse
import asyncio
import json
import os
import re
import sqlite3
import sys
import tempfile
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

STOP_WORDS = set(
    """a an and are as at be but by can do does for from has have how i if in
    into is it its me my no not of on or should so than that the their then
    there these they this to was we what when where which while who why will
    with would you your""".split()
)
MAX_TERMS = 32
PASSAGES = 8
ARTICLES = 5
TAGS = 5


def parse_duration(s):
    """Go-style duration ("10ms", "1s", "0") to seconds."""
    s = str(s).strip()
    if s in ("", "0"):
        return 0.0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m)", s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"bad duration {s!r}")
    return total


def build_index(corpus, path):
    """Index corpus (JSONL) into a new SQLite database at path."""
    db = sqlite3.connect(path)
    db.execute(
        "CREATE VIRTUAL TABLE passages USING fts5("
        "title, heading, tags, body, slug UNINDEXED, article UNINDEXED,"
        " tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    db.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, slug TEXT, title TEXT, tags TEXT)")
    articles = passages = 0
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            a = json.loads(line)
            tags = a.get("tags") or []
            cur = db.execute(
                "INSERT INTO articles (slug, title, tags) VALUES (?, ?, ?)",
                (a["slug"], a.get("title", ""), json.dumps(tags)),
            )
            articles += 1
            for heading, text in split_passages(a.get("body", "")):
                db.execute(
                    "INSERT INTO passages (title, heading, tags, body, slug, article) VALUES (?, ?, ?, ?, ?, ?)",
                    (a.get("title", ""), heading, " ".join(tags), text, a["slug"], cur.lastrowid),
                )
                passages += 1
    db.commit()
    db.close()
    return articles, passages


def split_passages(body):
    """Split a Markdown body into (heading, text) at '## ' headings."""
    out, heading, lines = [], "", []
    for line in body.splitlines():
        if line.startswith("## "):
            if "".join(lines).strip():
                out.append((heading, "\n".join(lines).strip()))
            heading, lines = line[3:].strip(), []
        else:
            lines.append(line)
    if "".join(lines).strip():
        out.append((heading, "\n".join(lines).strip()))
    return out


def normalise(q):
    q = " ".join("".join(c for c in q if c.isprintable() or c.isspace()).split())
    if q and q[-1] not in ".?!":
        q += "?"
    return q


def terms(q):
    out = []
    for w in re.findall(r"[^\W_]+", q.lower()):
        if w not in STOP_WORDS and w not in out:
            out.append(w)
    return out[:MAX_TERMS]


class Searcher:
    """One read-only connection a thread over the index file."""

    def __init__(self, path):
        self.path = path
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            self.local.conn = c
        return c

    def search(self, words):
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        rows = self.conn().execute(
            "SELECT p.slug, a.title, a.tags, snippet(passages, 3, '', '', '...', 24),"
            " bm25(passages, 10.0, 4.0, 8.0, 1.0) AS rank"
            " FROM passages p JOIN articles a ON a.id = p.article"
            " WHERE passages MATCH ? ORDER BY rank LIMIT ?",
            (match, PASSAGES),
        ).fetchall()
        sources, seen, tag_score = [], set(), {}
        for slug, title, tags, snippet, rank in rows:
            tags = json.loads(tags)
            for t in tags:
                tag_score[t] = tag_score.get(t, 0.0) - rank
            if slug in seen or len(sources) == ARTICLES:
                continue
            seen.add(slug)
            sources.append(
                {
                    "slug": slug,
                    "title": title,
                    "url": "/articles/" + slug,
                    "tags": tags,
                    "score": round(-rank, 2),
                    "snippet": snippet,
                }
            )
        tags = sorted(tag_score, key=lambda t: -tag_score[t])[:TAGS]
        return tags, sources


def event(type_, data):
    return json.dumps({"type": type_, "data": data}, separators=(",", ":"), ensure_ascii=False) + "\n"


def make_app(searcher, tokens, interval):
    app = FastAPI()
    headers = {
        "Cache-Control": "no-cache, no-transform",
        "X-Accel-Buffering": "no",
        "X-Content-Type-Options": "nosniff",
    }

    def invalid(message):
        return JSONResponse({"error": {"code": "invalid", "message": message}}, status_code=400)

    async def answer(question):
        words = terms(question)
        if not words:
            return invalid("The question has no words to search for.")

        async def events():
            yield event("query", question)
            tags, sources = await asyncio.to_thread(searcher.search, words)
            yield event("tags", tags)
            yield event("titles", [s["title"] for s in sources])
            yield event("sources", sources)
            for i in range(tokens):
                if i > 0:
                    await asyncio.sleep(interval)
                yield '{"type":"token","data":"t=%d "}\n' % time.time_ns()
            yield event("done", {"finish_reason": "stop"})

        return StreamingResponse(events(), media_type="application/x-ndjson", headers=headers)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/articles/stream")
    async def stream_get(question: str = ""):
        q = normalise(question)
        if not q:
            return invalid("The question is empty.")
        return await answer(q)

    @app.post("/articles/stream")
    async def stream_post(request: Request):
        try:
            body = await request.json()
            q = normalise(body["question"])
        except Exception:
            return invalid('The request body is not a JSON object with a "question".')
        if not q:
            return invalid("The question is empty.")
        return await answer(q)

    return app


def main():
    env = os.environ.get
    p = argparse.ArgumentParser(description="FastAPI peer for runnel's load tests")
    p.add_argument("--corpus", default=env("RUNNEL_CORPUS", ""), help="corpus JSONL (gencorpus output)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(env("RUNNEL_PORT", "18092")))
    p.add_argument("--tokens", type=int, default=int(env("RUNNEL_TOKENS", "200")))
    p.add_argument("--interval", default=env("RUNNEL_INTERVAL", "10ms"), help="pause between tokens, e.g. 10ms, 1s, 0")
    args = p.parse_args()
    if not args.corpus:
        p.error("--corpus (or RUNNEL_CORPUS) is required")
    interval = parse_duration(args.interval)

    with tempfile.TemporaryDirectory(prefix="runnel-fastapi-") as tmp:
        path = os.path.join(tmp, "index.db")
        start = time.monotonic()
        articles, passages = build_index(args.corpus, path)
        print(
            f"fastapi: indexed {articles} articles, {passages} passages in {time.monotonic() - start:.1f} s;"
            f" serving on http://{args.host}:{args.port} (pid {os.getpid()})",
            flush=True,
        )
        app = make_app(Searcher(path), args.tokens, interval)
        uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
