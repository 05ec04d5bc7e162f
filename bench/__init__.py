"""`make bench`: how fast the bot answers, how much it asks of Slack and OpenAI, and how it holds
up under load, each figure beside the classic quickstart loop's, measured in the same run.

Everything runs on this machine, from outside the bot: a real bot process (`python -m bot`,
HTTP mode, configured through its environment) receives signed Slack events over HTTP and
talks to the bundled Slack and OpenAI stand-ins (bot/local) and to a redis-server of the
benchmark's own on a free port. The stand-ins live in the benchmark's process and note when
things happen there: when a model run ended (`ResponseJob.finished_at`) and every Slack call
(`ApiCall.at`). Slack's published rate limits are enforced (`SlackStandIn(rate_limits=...)`:
429 with Retry-After), so the figures hold against the real limits.

The classic loop (bench/classic.py) is the quickstart pattern with the official SDKs against
the same stand-ins: post a placeholder, create a conversation and a background response,
`retrieve` it every 0.5 s until its status is final, then edit the placeholder into the
answer.

What the table shows (medians, and p99 from 100 samples on, else the maximum):

- run end → answer shown: from the moment the model's run ended at the server to the Slack
  call after which the whole answer is shown and final (no "Thinking…", no open stream),
  per TUTOR_STREAMING mode (native, edit; off is plain polling).
- OpenAI / Slack requests per turn, for short (2 s) and long (10 s) runs: every request the
  stand-ins received during a batch, 429s included, each counted for the turn it names (its
  channel, response, conversation or question) and those naming no turn shared evenly.
- the load: turns arriving at a steady rate (50 a second) with long runs (20 s), so about
  1,000 are in flight: how long the POST to /slack/events takes (the ack), how long until
  the placeholder is posted, how many turns are answered within the drain time, and the bot
  process's peak memory growth (VmRSS/VmHWM from /proc, over a baseline taken after warm-up
  turns) divided by the most turns in flight at once.

- many machines: 2 `web` and 2 `worker` processes (`python -m bot web|worker`) on a Redis
  Cluster of the benchmark's own (3 masters, 3 replicas, TUTOR_REDIS_CLUSTER=on,
  TUTOR_REDIS_SHARDS=16), one batch of the first model time in TUTOR_STREAMING=native: run
  end → answer shown and event sent → placeholder posted, beside the one process on one
  Redis of the first phase (in the "classic loop" column).

Each model time gets a random extra of up to `--jitter` seconds (1 s, the bot's default
poll interval and twice the classic loop's), so a polling loop's tick lands anywhere in its
period, as in life. Every batch starts with full rate-limit buckets (a
workspace quiet for a minute), each turn in a channel of its own. `python -m bench --help`
lists the knobs (model times, turns, arrival rate, streaming modes, rate limits); every wait
is bounded, the whole run stops at `--deadline` (285 s) with what it has, and Ctrl-C or
SIGTERM stops the bot and Redis (on Linux they also die with the benchmark).
"""
