"""Every MQTT topic StoreEdge uses, built in one place.

Store side (prefix ``retail/v1/{store_id}`` by default)::

    {prefix}/state          retained online/offline, session counter, version (Last Will flips it offline)
    {prefix}/agg/{kind}     aggregate windows: scans, health (and traffic, presence, visits, ... as they land)
    {prefix}/cmd/{name}     commands from HQ (downlink, QoS1); name may contain '/', e.g. config/reload
    {prefix}/cmd_result     results of commands (uplink)
"""

from dataclasses import dataclass

STORE_PLACEHOLDER = "{store_id}"
WILDCARD = "+"


@dataclass(frozen=True, slots=True)
class Topics:
    """Topics of one store under a prefix template such as ``retail/v1/{store_id}``."""

    prefix_template: str
    store_id: str

    @property
    def prefix(self) -> str:
        """The store's own prefix."""
        return self.prefix_template.replace(STORE_PLACEHOLDER, self.store_id)

    @property
    def state(self) -> str:
        """Retained online state."""
        return f"{self.prefix}/state"

    def agg(self, kind: str) -> str:
        """Aggregates of one kind."""
        return f"{self.prefix}/agg/{kind}"

    def cmd(self, name: str) -> str:
        """One command from HQ."""
        return f"{self.prefix}/cmd/{name}"

    @property
    def cmd_filter(self) -> str:
        """Subscription for every command to this store."""
        return f"{self.prefix}/cmd/#"

    @property
    def cmd_result(self) -> str:
        """Results of commands."""
        return f"{self.prefix}/cmd_result"

    def command_name(self, topic: str) -> str | None:
        """The command name of a topic under ``cmd/``, or None when the topic is not one."""
        head = f"{self.prefix}/cmd/"
        return topic[len(head):] if topic.startswith(head) and len(topic) > len(head) else None


@dataclass(frozen=True, slots=True)
class HqTopics:
    """Subscriptions of the HQ receiver over every store under a prefix template."""

    prefix_template: str = "retail/v1/{store_id}"

    @property
    def root(self) -> str:
        """The prefix with the store id as a single-level wildcard."""
        return self.prefix_template.replace(STORE_PLACEHOLDER, WILDCARD)

    def shared(self, group: str, topic_filter: str) -> str:
        """An MQTT 5 shared subscription, so receivers in one group split the messages."""
        return f"$share/{group}/{topic_filter}"

    @property
    def agg_filter(self) -> str:
        """Every store's aggregates."""
        return f"{self.root}/agg/#"

    @property
    def state_filter(self) -> str:
        """Every store's state."""
        return f"{self.root}/state"

    @property
    def cmd_result_filter(self) -> str:
        """Every store's command results."""
        return f"{self.root}/cmd_result"

    def store_of(self, topic: str) -> str | None:
        """The store id in a topic under the prefix template, or None."""
        head, _, tail = self.prefix_template.partition(STORE_PLACEHOLDER)
        if not topic.startswith(head):
            return None
        rest = topic[len(head):]
        store, sep, remainder = rest.partition("/")
        if not store or not (remainder.startswith(tail.lstrip("/")) if tail else sep):
            return None
        return store

    def cmd(self, store_id: str, name: str) -> str:
        """A command topic of one store (for HQ tools that send commands)."""
        return Topics(self.prefix_template, store_id).cmd(name)
