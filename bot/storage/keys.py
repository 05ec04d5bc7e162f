"""Every Redis key the bot uses, built in one place under one prefix.

One Redis can serve several bots (or test runs) because every key starts with the prefix.

On Redis Cluster (`cluster`, TUTOR_REDIS_CLUSTER) a script or MULTI may only touch keys of
one hash slot; a `{tag}` in a key name picks its slot. Six tags, all made here:
- the queue shard of a conversation, `{q<n>}`: its queue, turn index and askers, the ready
  stream of its shard and the markers of deliveries recorded into it, so recording a turn
  stays one atomic script (and forgetting checks that no question waits in one too);
  a conversation's shard is a stable hash of its key (`shard_of`), `shards` is
  TUTOR_REDIS_SHARDS;
- a person, `{<team>:<user>}`: what they have waiting and asked lately (the guards' counts);
- a workspace, `{<team>}`: a course with the list of courses, and a course's materials keys;
- `{installations}`: the installations with the purge schedule;
- a `chat` conversation, `{<history id>}`: its history with its runs' records, so a run
  ends and its answer joins the history in one transaction;
- `{forget}`: the forget jobs with their list.
Other keys carry no tag and spread over the cluster by their whole name; what changes keys
of several slots does it in single-slot steps, ordered so that a crash in between orphans
nothing and counts nothing twice (forgetting a conversation, bot.turns.forget; feedback and
quiz counts; the usage ledger). On one Redis the keys carry no tags: their names stay what
they always were (shard 0's stream is `ready`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

# How long we remember a Slack delivery, to drop Slack's retries (it retries up to 5 min later).
DELIVERY_TTL_SECONDS = 24 * 60 * 60
# How long a turn's record is kept after it was accepted (long past any retry or recovery).
TURN_TTL_SECONDS = 7 * 24 * 60 * 60
# The consumer group every bot process reads the turn stream with.
WORKER_GROUP = "workers"


def scan_pattern(prefix: str) -> str:
    """A SCAN pattern for every key starting with `prefix`, taken literally (Redis globs
    escape `*`, `?`, `[`, `]` and the backslash with a backslash)."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in prefix) + "*"


@dataclass(frozen=True)
class Keys:
    """Builds the bot's Redis keys; `prefix` is TUTOR_REDIS_PREFIX."""

    prefix: str = "tutor:"
    shards: int = 1  # TUTOR_REDIS_SHARDS: ready streams the turn queue is split into
    cluster: bool = False  # TUTOR_REDIS_CLUSTER: keys that change together carry a {tag}

    def shard_of(self, conversation_key: str) -> int:
        """The queue shard of a conversation: the same in every process (CRC-32, not hash())."""
        return zlib.crc32(conversation_key.encode()) % self.shards

    def _slot(self, tag: str) -> str:
        """`{tag}:` on a cluster (the key's slot is the tag's), nothing on one Redis."""
        return f"{{{tag}}}:" if self.cluster else ""

    def _tagged(self, part: str) -> str:
        """A part of a key that is also its tag on a cluster: `{part}`, else `part`."""
        return f"{{{part}}}" if self.cluster else part

    def _shard_slot(self, conversation_key: str) -> str:
        return self._slot(f"q{self.shard_of(conversation_key)}")

    def conversation(self, backend: str, conversation_key: str) -> str:
        """Slack conversation → backend conversation id (thread_…, conv_…, or a chat history id)."""
        return f"{self.conversation_prefix(backend)}{conversation_key}"

    def event_seen(self, event_id: str, conversation_key: str | None = None) -> str:
        """Set once per Slack `event_id`: Slack's retries of that delivery are dropped. In the
        slot of the conversation it belongs to, recorded with its turn in one script."""
        return f"{self.prefix}seen:event:{self._delivery_tag(conversation_key)}{event_id}"

    def message_seen(self, channel: str, ts: str, conversation_key: str | None = None) -> str:
        """Set once per Slack message: one mention arrives as `app_mention` and as `message`
        (both name the same conversation, so the same key)."""
        return f"{self.prefix}seen:msg:{self._delivery_tag(conversation_key)}{channel}:{ts}"

    def _delivery_tag(self, conversation_key: str | None) -> str:
        return "" if conversation_key is None else self._shard_slot(conversation_key)

    def assistant_id(self, name: str, model: str) -> str:
        """The assistant the bot created for these settings (assistants backend)."""
        return f"{self.prefix}assistant:{name}:{model}"

    def assistant_creation(self, name: str, model: str) -> str:
        """A lock held by the one process creating that assistant, so only one does."""
        return f"{self.prefix}assistant-creating:{name}:{model}"

    def chat_history(self, history_id: str) -> str:
        """A chat backend conversation's messages (a Redis list of JSON entries); on a
        cluster its id is its tag, shared with its runs' records."""
        return f"{self.prefix}chat:history:{self._tagged(history_id)}"

    def chat_run(self, run_id: str, history_id: str) -> str:
        """A chat backend run's status, answer and usage (a Redis hash). On a cluster it
        carries its conversation's tag: a run's end and its answer in the history are
        written in one transaction."""
        return f"{self.prefix}chat:run:{self._slot(history_id)}{run_id}"

    def turn(self, turn_id: str) -> str:
        """A turn's record: the turn itself and each step done so far (a Redis hash)."""
        return f"{self.prefix}turn:{turn_id}"

    def conversation_queue(self, conversation_key: str) -> str:
        """The turns of one Slack conversation still to answer, oldest first (a Redis list)."""
        return f"{self.prefix}queue:{self._shard_slot(conversation_key)}{conversation_key}"

    def conversation_lease(self, conversation_key: str) -> str:
        """Held by the one process answering this conversation's turns right now."""
        return f"{self.prefix}lease:{conversation_key}"

    def ready_stream(self, shard: int) -> str:
        """A Redis Stream of "this conversation has turns waiting", read by a consumer group;
        one per shard (`shard_of` the conversation), each read by every worker."""
        if self.cluster:
            return f"{self.prefix}ready:{{q{shard}}}"
        return f"{self.prefix}ready" + (f":{shard}" if shard else "")

    def ready_stream_of(self, conversation_key: str) -> str:
        return self.ready_stream(self.shard_of(conversation_key))

    def chat_turn_run(self, turn_id: str) -> str:
        """The chat run started for a turn, so a resumed turn can find it."""
        return f"{self.prefix}chat:turn-run:{turn_id}"

    def assistant_thread(self, channel_id: str, thread_ts: str) -> str:
        """Set for DM threads opened in Slack's assistant pane (legacy assistant_view)."""
        return f"{self.prefix}assistant-thread:{channel_id}:{thread_ts}"

    def provider_files(self, conversation_key: str) -> str:
        """The files uploaded to the model server for a conversation's attachments (a Redis
        set of file ids): deleted there, with this key, when the conversation is forgotten."""
        return f"{self.prefix}provider-files:{conversation_key}"

    def command_thread(self, thread_key: str) -> str:
        """The conversation a /tutor thread root continues (its key was made before the root)."""
        return f"{self.prefix}command-thread:{thread_key}"

    def stop(self, turn_id: str) -> str:
        """Set when someone pressed Stop on this turn's placeholder."""
        return f"{self.prefix}stop:{turn_id}"

    def model_shutdown_notice(self, team_id: str, model: str, day: str) -> str:
        """Set by the one process that tells a workspace's admins, on `day` (UTC), that the
        model is about to shut down: once a day, however many processes run."""
        return f"{self.prefix}notice:model-shutdown:{team_id}:{model}:{day}"

    def feedback(self, turn_id: str) -> str:
        """The feedback on one turn's answer: the last click (rating, who, when) and an
        optional comment (a hash; expires like the turn's record)."""
        return f"{self.prefix}feedback:turn:{turn_id}"

    def feedback_counts(self, team_id: str) -> str:
        """A workspace's answers rated up and down, per channel (a hash: `<channel>:up`,
        `<channel>:down`); a changed click moves its count."""
        return f"{self.prefix}feedback:counts:{team_id}"

    def feedback_comments(self, team_id: str, channel_id: str) -> str:
        """The latest comments on answers in one channel, newest first (a capped list)."""
        return f"{self.prefix}feedback:comments:{team_id}:{channel_id}"

    def agent_session_titled(self, conversation_key: str) -> str:
        """Set once the agent session of a thread's conversation was given its title."""
        return f"{self.prefix}agent-session-titled:{conversation_key}"

    def usage(self, period: str) -> str:
        """Token usage of one UTC day (`YYYY-MM-DD`) or month (`YYYY-MM`): a hash of
        `<team>:<figure>` per workspace and `<team>:<user>:<figure>` per user."""
        return f"{self.prefix}usage:{period}"

    def turn_usage(self, turn_id: str) -> str:
        """One turn's token figures (a hash), written once: a resumed turn is not counted twice."""
        return f"{self.prefix}usage:turn:{turn_id}"

    def conversation_usage(self, conversation_key: str) -> str:
        """Token totals of one Slack conversation (a hash); deleted when it is forgotten."""
        return f"{self.prefix}usage:conversation:{conversation_key}"

    def conversation_turns(self, conversation_key: str) -> str:
        """The ids of the turns asked in one Slack conversation (a set), so that forgetting
        it finds their records."""
        return f"{self.prefix}conv-turns:{self._shard_slot(conversation_key)}{conversation_key}"

    def conversation_runs(self, conversation_key: str) -> str:
        """The backend runs started in one Slack conversation (a set: response, run or chat
        run ids), so that forgetting it deletes them at the backend too."""
        return f"{self.prefix}conv-runs:{conversation_key}"

    def conversation_askers(self, conversation_key: str) -> str:
        """The Slack users who asked in one conversation (a set): who may forget it. (Both
        indexes share the queue's slot on a cluster: the recording script writes them.)"""
        return f"{self.prefix}conv-askers:{self._shard_slot(conversation_key)}{conversation_key}"

    def conversation_links(self, conversation_key: str) -> str:
        """Other keys that point to one conversation (a set of key names, such as a /tutor
        thread's alias), deleted with it."""
        return f"{self.prefix}conv-links:{conversation_key}"

    @property
    def activity(self) -> str:
        """Every conversation by the time of its last question (a sorted set, epoch seconds):
        what the retention sweep reads."""
        return f"{self.prefix}activity"

    @property
    def activity_backfilled(self) -> str:
        """Set once conversations recorded before the activity index existed were added to it."""
        return f"{self.prefix}activity-backfilled"

    @property
    def forget_jobs(self) -> str:
        """Conversations being forgotten, in Redis or still at the backend (a sorted set of
        job ids by when a process may take the job up; the one that created it works on it
        first). Shares the `{forget}` tag with the jobs: a job and its place go together."""
        return f"{self.prefix}forget-jobs" + (":{forget}" * self.cluster)

    def forget_job(self, job_id: str) -> str:
        """What a forget job deletes (a hash: backend, conversation, runs, files; while its
        Redis part is unfinished also the conversation's key and its keys' names)."""
        return f"{self.prefix}forget-job:{self._slot('forget')}{job_id}"

    def conversation_prefix(self, backend: str) -> str:
        """The start of every `conversation` key of one backend (to find them all)."""
        return f"{self.prefix}conv:{backend}:"

    def edit_budget(self, team_id: str) -> str:
        """A workspace's budget of placeholder status edits, shared by every process (a hash:
        tokens, when last refilled, paused until after a 429)."""
        return f"{self.prefix}edit-budget:{team_id}"

    def installation(self, team_id: str) -> str:
        """A workspace's installation of the bot (OAuth mode): its bot token and ids (JSON).
        Workspaces of an Enterprise Grid org that installed it one by one are keyed by their
        own team id too (team ids are unique across Slack), with the org's id inside."""
        return f"{self.prefix}installation:{self._slot('installations')}team:{team_id}"

    def org_installation(self, enterprise_id: str) -> str:
        """An org-wide (Enterprise Grid) installation, keyed by the org's id (JSON)."""
        return f"{self.prefix}installation:{self._slot('installations')}org:{enterprise_id}"

    def oauth_state(self, nonce: str) -> str:
        """An install link's state, issued at /slack/install and consumed once (expiring)."""
        return f"{self.prefix}oauth-state:{nonce}"

    @property
    def workspace_purges(self) -> str:
        """Workspaces that uninstalled the bot, by when their data is deleted (a sorted set
        of team ids, epoch seconds)."""
        return f"{self.prefix}workspace-purges" + (":{installations}" * self.cluster)

    def quiz(self, quiz_id: str) -> str:
        """One quiz as shown to its learner, with its right answers (JSON; expires)."""
        return f"{self.prefix}quiz:{quiz_id}"

    def quiz_answers(self, quiz_id: str) -> str:
        """The answers clicked on one quiz (a hash: `first:<question>`, the answer that
        counts, and `last:<question>`, the latest; expires with the quiz)."""
        return f"{self.prefix}quiz:answers:{quiz_id}"

    def quiz_learner_scores(self, team_id: str, user_id: str) -> str:
        """One learner's quiz scores per course (a hash: `right:<course>`, `answered:<course>`)."""
        return f"{self.prefix}quiz:scores:{team_id}:{user_id}"

    def quiz_course_totals(self, team_id: str) -> str:
        """A workspace's quiz totals per course (a hash: `quizzes:<course>`,
        `answered:<course>`, `right:<course>`)."""
        return f"{self.prefix}quiz:courses:{team_id}"

    def quiz_course_learners(self, course_key: str) -> str:
        """The learners who answered a quiz question in a course (a set of user ids)."""
        return f"{self.prefix}quiz:learners:{course_key}"

    # Courses, learners and what they do (bot.tutor.courses, bot.tutor.activity) --------------

    def course(self, team_id: str, channel_id: str) -> str:
        """A channel's course: name, subject, instructions, default mode, answer length (a
        hash; kept until changed)."""
        return f"{self.prefix}course:{self._tagged(team_id)}:{channel_id}"

    def course_names(self, team_id: str) -> str:
        """A workspace's courses: channel id → course name (a hash), listed in the App Home."""
        return f"{self.prefix}courses:{self._tagged(team_id)}"

    def learner(self, team_id: str, user_id: str) -> str:
        """A learner's choices: `mode` (guided or direct) and `dm_course` (the channel whose
        course their DMs use); a hash of Slack ids and words, no message text."""
        return f"{self.prefix}learner:{team_id}:{user_id}"

    def learner_channels(self, team_id: str, user_id: str) -> str:
        """The channels a learner asked in (a set of channel ids), for their App Home."""
        return f"{self.prefix}learner-channels:{team_id}:{user_id}"

    def course_stats(self, team_id: str) -> str:
        """Questions asked per channel of a workspace (a hash: `<channel>:questions`)."""
        return f"{self.prefix}course-stats:{team_id}"

    def course_learners(self, team_id: str, channel_id: str) -> str:
        """The people who asked in a channel (a set of user ids), counted for its course."""
        return f"{self.prefix}course-learners:{team_id}:{channel_id}"

    def learner_topics(self, team_id: str, user_id: str) -> str:
        """A learner's recent conversations: conversation key → JSON {channel, at} (no text).
        Capped, expiring, and deleted per conversation when it is forgotten (by
        `bot.turns.forget`, through `topic_learners`)."""
        return f"{self.prefix}topics:{team_id}:{user_id}"

    def topic_learners(self, conversation_key: str) -> str:
        """Whose recent topics name this conversation (a set of user ids), so forgetting the
        conversation finds its topic entries."""
        return f"{self.prefix}topic-learners:{conversation_key}"

    def reveal_questions(self, conversation_key: str) -> str:
        """The turns of a conversation's guided answers, for their "Show me the answer"
        button (a capped list of JSON: turn, asker, where to answer; no text); it expires
        like a turn's record and is deleted when the conversation is forgotten."""
        return f"{self.prefix}reveal:{conversation_key}"

    def channel_usage(self, team_id: str) -> str:
        """Token totals per channel of a workspace, all time (a hash: `<channel>:<figure>`),
        shown per course in the App Home."""
        return f"{self.prefix}usage:channels:{team_id}"

    def user_queued(self, team_id: str, user_id: str) -> str:
        """The turns one person asked that are not answered yet (a sorted set of turn ids,
        scored by when each was accepted): what TUTOR_MAX_QUEUED_PER_USER counts."""
        return f"{self.prefix}queued:{self._tagged(f'{team_id}:{user_id}')}"

    def user_recent(self, team_id: str, user_id: str) -> str:
        """The questions one person asked in the last minute (a sorted set of turn ids,
        scored by when each was accepted): what TUTOR_USER_RATE counts."""
        return f"{self.prefix}recent:{self._tagged(f'{team_id}:{user_id}')}"

    def refusal_notice(self, team_id: str, user_id: str, reason: str) -> str:
        """Set for a minute once a person was told a question was refused for `reason`."""
        return f"{self.prefix}refusal-notice:{team_id}:{user_id}:{reason}"

    # Course materials (bot.tutor.materials, bot.backends.file_search, bot.backends.passages) ---

    def materials(self, team_id: str, channel_id: str) -> str:
        """A course's materials: material id → JSON (file name, kind, size, pages, the
        provider's file id where it was uploaded); a hash, kept until removed. The three
        materials keys carry the workspace's tag on a cluster: they change together."""
        return f"{self.prefix}materials:{self._tagged(team_id)}:{channel_id}"

    def materials_state(self, team_id: str, channel_id: str) -> str:
        """A course's materials as a whole (a hash): `version`, raised at every change so
        that cached search indexes are rebuilt, and `vector_store` (its id at the provider)."""
        return f"{self.prefix}materials-state:{self._tagged(team_id)}:{channel_id}"

    def material_chunks(self, team_id: str, channel_id: str) -> str:
        """A course's passages for local retrieval (`chat`): material id → JSON list of
        {text, page} (a hash); nothing of it leaves the bot's machines."""
        return f"{self.prefix}material-chunks:{self._tagged(team_id)}:{channel_id}"
