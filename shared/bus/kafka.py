"""Kafka bus via aiokafka: acks=all, idempotent batching producer; consumer group whose
positions come from the database (architecture decision 4), not from Kafka's committed offsets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from shared.bus.base import BusUnavailable, Consumer, OffsetsLoader, OutgoingRecord, Record

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


class KafkaBus:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        partitions: int = 6,
        replication_factor: int = 1,
        client_id: str = "salespulse",
        publish_timeout_s: float = 3.0,
    ) -> None:
        self._servers = bootstrap_servers
        self._partitions = partitions
        self._replication = replication_factor
        self._client_id = client_id
        self._publish_timeout_s = publish_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Connect the producer if the broker answers; if not, ``publish`` retries later."""
        try:
            await self._producer_ready()
        except BusUnavailable as exc:
            log.warning(
                "kafka not reachable at start; will retry on demand", extra={"error": str(exc)}
            )

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def ready(self) -> bool:
        try:
            producer = await self._producer_ready()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), 2.0)
        except (BusUnavailable, KafkaError, TimeoutError):
            return False
        return True

    async def _producer_ready(self) -> AIOKafkaProducer:
        """The connected producer; connecting it counts against the publish timeout from now,
        so a broker that is down cannot hold a caller past it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                await self._starting.acquire()
        except TimeoutError:
            raise BusUnavailable("kafka producer still connecting") from None
        try:
            if self._producer is None:
                self._producer = await self._connect(max(deadline - loop.time(), 0.001))
            return self._producer
        finally:
            self._starting.release()

    async def _connect(self, timeout_s: float) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._servers,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            # No linger: aiokafka keeps one produce request in flight per broker, so under load
            # what arrives during an acknowledgement already leaves as one batch; lingering on
            # top saved no CPU per record (bench, ingest's load) and delayed a lone event.
            linger_ms=0,
            max_batch_size=256 * 1024,
            partitioner=KeyHashPartitioner(),
            request_timeout_ms=int(self._publish_timeout_s * 1000),
        )
        try:
            # start() retries the bootstrap and the producer id for as long as it takes.
            await asyncio.wait_for(producer.start(), timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            await producer.stop()
            raise BusUnavailable(f"kafka at {self._servers} unreachable: {exc!r}") from exc
        return producer

    async def end_offsets(self, topic: str) -> dict[int, int]:
        partitions = await (await self._producer_ready()).partitions_for(topic)
        probe = AIOKafkaConsumer(bootstrap_servers=self._servers, client_id=self._client_id)
        await probe.start()
        try:
            ends = await probe.end_offsets([TopicPartition(topic, p) for p in partitions])
            return {tp.partition: offset for tp, offset in ends.items()}
        finally:
            await probe.stop()

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._servers, client_id=self._client_id)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if not missing:
                return
            response = await admin.create_topics(
                [NewTopic(t, self._partitions, self._replication) for t in missing]
            )
            for topic, code, *_ in response.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise BusUnavailable(f"could not create topic {topic}: error code {code}")
            log.info("topics created", extra={"topics": missing, "partitions": self._partitions})
        finally:
            await admin.close()

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        """Return once Kafka acknowledged every record, or raise ``BusUnavailable``: connecting
        a producer and waiting for the acknowledgements each take at most the publish timeout
        (``send`` only queues, bounded by the producer's request timeout, the same)."""
        producer = self._producer or await self._producer_ready()
        try:
            pending = [
                await producer.send(topic, r.value, key=r.key, headers=list(r.headers))
                for r in records
            ]
            # One timeout on the acknowledgements (a scope around the sends too measured a third
            # fewer webhooks/s under load); a lone record's future is awaited as it is.
            await self._acknowledged(pending[0] if len(pending) == 1 else asyncio.gather(*pending))
        except (KafkaError, TimeoutError) as exc:
            raise BusUnavailable(f"kafka did not acknowledge: {exc!r}") from exc

    async def _acknowledged(self, acks: asyncio.Future[Any]) -> None:
        """Wait for ``acks``; ``TimeoutError`` past the publish timeout, the wait cancelled.

        One timer that cancels the future, where ``wait_for`` or a timeout scope cost a task or
        a scope's bookkeeping on every webhook. A cancellation of the caller itself is told from
        the timer's by the task's own count of cancel requests, and goes on as it came.
        """
        expiry = asyncio.get_running_loop().call_later(self._publish_timeout_s, acks.cancel)
        try:
            await acks
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise TimeoutError(f"no acknowledgement within {self._publish_timeout_s}s") from None
        finally:
            expiry.cancel()

    def consumer(self, topic: str, group: str, load_offsets: OffsetsLoader) -> Consumer:
        return KafkaConsumer(self._servers, topic, group, load_offsets, self._client_id)


class KeyHashPartitioner:
    """aiokafka's default partitioner (the Java client's murmur2 of the key), each key's hash
    remembered: keys are actors, few and recurring, and the hash is pure Python, a visible
    cost of every record. The memory is bounded; past it, it starts again."""

    def __init__(self, capacity: int = 65_536) -> None:
        self._capacity = capacity
        self._hashes: dict[bytes, int] = {}
        self._default = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:  # no key: a random partition, as the default does
            return int(self._default(key, all_partitions, available))
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._capacity:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """On every assignment, position each partition at the offset stored with the aggregates."""

    def __init__(self, owner: KafkaConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._owner.forget(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._owner.seek_to_stored(assigned)


class KafkaConsumer:
    def __init__(
        self, servers: str, topic: str, group: str, load_offsets: OffsetsLoader, client_id: str
    ) -> None:
        self._topic = topic
        self._load_offsets = load_offsets
        self._positions: dict[int, int] = {}  # partition -> next offset handed out
        # partition -> the offset stored with the aggregates, once this consumer positioned the
        # partition there; nothing before it, and nothing of a partition not positioned yet,
        # is handed out (see ``getmany``)
        self._floors: dict[int, int] = {}
        # partition -> its end offset when assigned: the lag until the first fetch tells the
        # broker's high watermark (a dashboard shows the backlog at once, not "No data")
        self._ends: dict[int, int] = {}
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            group_id=group,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=100,
        )

    async def start(self) -> None:
        self._consumer.subscribe([self._topic], listener=_SeekToStoredOffsets(self))
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def seek_to_stored(self, assigned: list[TopicPartition]) -> None:
        mine = [tp for tp in assigned if tp.topic == self._topic]
        stored = await self._load_offsets(self._topic, [tp.partition for tp in mine])
        unknown = []
        for tp in mine:
            if tp.partition in stored:
                self._consumer.seek(tp, stored[tp.partition])
                self._positions[tp.partition] = stored[tp.partition]
                self._floors[tp.partition] = stored[tp.partition]
            else:
                unknown.append(tp)
        if unknown:
            await self._consumer.seek_to_beginning(*unknown)
            self._floors.update(dict.fromkeys((tp.partition for tp in unknown), 0))
        await self._read_ends(mine, unknown)
        log.info(
            "partitions assigned",
            extra={
                "topic": self._topic,
                "partitions": sorted(tp.partition for tp in mine),
                "stored_offsets": stored,
            },
        )

    async def _read_ends(
        self, partitions: list[TopicPartition], from_start: list[TopicPartition]
    ) -> None:
        """The end offset of each assigned partition, and where those read from their start
        begin (best effort: for the lag gauge only)."""
        if not partitions:
            return
        try:
            ends = await self._consumer.end_offsets(partitions)
            starts = await self._consumer.beginning_offsets(from_start) if from_start else {}
        except KafkaError as exc:
            log.debug("end offsets unknown at assignment", extra={"error": repr(exc)})
            return
        self._ends.update({tp.partition: int(end) for tp, end in ends.items()})
        for tp, start in starts.items():
            self._positions.setdefault(tp.partition, int(start))

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Record]:
        try:
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:  # the caller waits and fetches again; nothing is skipped
            raise BusUnavailable(f"fetch failed: {exc!r}") from exc
        records = []
        for tp, messages in batches.items():
            # The broker may hand out records of a new assignment before our listener has read
            # the stored offsets and seeked (it starts from Kafka's committed offset, which is
            # only monitoring and may lag): those records wait for the seek, which fetches
            # them again from the stored offset; records before that offset were applied.
            floor = self._floors.get(tp.partition)
            if floor is None:
                continue
            fresh = [m for m in messages if m.offset >= floor]
            if len(fresh) < len(messages):
                log.warning(
                    "records before the stored offset dropped",
                    extra={
                        "partition": tp.partition,
                        "stored": floor,
                        "dropped": len(messages) - len(fresh),
                    },
                )
            records += [
                Record(
                    m.topic, m.partition, m.offset, m.key, m.value, m.timestamp, tuple(m.headers)
                )
                for m in fresh
            ]
            if messages:
                self._positions[tp.partition] = max(messages[-1].offset + 1, floor)
        return records

    async def acknowledge(self, next_offsets: dict[int, int]) -> None:
        assigned = {tp.partition for tp in self._consumer.assignment()}
        offsets = {
            TopicPartition(self._topic, p): o for p, o in next_offsets.items() if p in assigned
        }
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance in between; the database holds the truth anyway
            log.debug("offset commit to kafka skipped", extra={"error": repr(exc)})

    def forget(self, revoked: list[TopicPartition]) -> None:
        """Partitions taken away: handed out again only after the next assignment's seek."""
        for tp in revoked:
            self._floors.pop(tp.partition, None)
            self._ends.pop(tp.partition, None)

    def lag(self) -> dict[int, int]:
        lags: dict[int, int] = {}
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:  # nothing fetched yet: the end offset read at assignment
                high = self._ends.get(tp.partition)
            position = self._positions.get(tp.partition)
            if high is not None and position is not None:
                lags[tp.partition] = max(high - position, 0)
        return lags
