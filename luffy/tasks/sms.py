"""The SMS send task on the ``sms`` queue: one delivery attempt per run, retried by TaskIQ.

Transient provider failures raise ``TransientSmsError``, which the retry middleware retries with
backoff (``LUFFY_SMS_RETRY_DELAY_SECONDS`` times the try number, plus jitter) up to
``SMS_MAX_ATTEMPTS`` tries in all; any other outcome ends the task.
"""

from __future__ import annotations

from typing import Annotated

from taskiq import Context, TaskiqDepends, TaskiqEvents
from taskiq.state import TaskiqState

from luffy.settings import Settings
from luffy.tasks.broker import sms_broker
from luffy.tasks.deps import CacheDep, SessionDep, SettingsDep
from luffy.tasks.outage import waits_out_outages
from luffy.user.services import SMS_MAX_ATTEMPTS, Enqueue, deliver_code
from luffy.user.sms_providers import SmsProvider, TransientSmsError, make_sms_provider

SEND_SMS_CODE = "luffy.sms.send_code"


def task_sms_provider(context: Annotated[Context, TaskiqDepends()]) -> SmsProvider:
    """One provider (and its HTTP connection pool) per worker, made on first use."""
    state = context.state
    provider = getattr(state, "sms_provider", None)
    if provider is None:
        provider = make_sms_provider(state.settings)
        state.sms_provider = provider
    return provider


async def _close_sms_provider(state: TaskiqState) -> None:
    provider = getattr(state, "sms_provider", None)
    if provider is not None:
        state.sms_provider = None
        await provider.aclose()


# A worker stops with WORKER_SHUTDOWN; the API, which runs embedded tasks itself, with CLIENT_SHUTDOWN.
for _event in (TaskiqEvents.WORKER_SHUTDOWN, TaskiqEvents.CLIENT_SHUTDOWN):
    sms_broker.add_event_handler(_event, _close_sms_provider)


@sms_broker.task(
    task_name=SEND_SMS_CODE,
    retry_on_error=True,
    max_retries=SMS_MAX_ATTEMPTS,
    types_of_exceptions=(TransientSmsError,),
)
@waits_out_outages
async def send_sms_code(
    mobile: str,
    send_id: str,
    session: SessionDep,
    cache: CacheDep,
    settings: SettingsDep,
    provider: Annotated[SmsProvider, TaskiqDepends(task_sms_provider)],
) -> str:
    return await deliver_code(session, cache, provider, settings, mobile, send_id)


async def enqueue_sms_code(settings: Settings, mobile: str, send_id: str) -> None:
    """Hand the delivery of ``send_id``'s code to the ``sms`` queue (the task id is the send id)."""
    await (
        send_sms_code.kicker()
        .with_task_id(send_id)
        .with_labels(delay=settings.sms_retry_delay_seconds)
        .kiq(mobile, send_id)  # type: ignore[call-overload]  # the other parameters are TaskIQ dependencies
    )


def sms_enqueuer(settings: Settings) -> Enqueue:
    """The ``enqueue`` that ``luffy.app`` gives the SMS code service."""

    async def enqueue(mobile: str, send_id: str) -> None:
        await enqueue_sms_code(settings, mobile, send_id)

    return enqueue
