"""One browser tab's training session behind its WebSocket.

Its first message, ``hello``, carries what the page builds its controls from
(``settings.controls``: features, usual noise, ranges, limits, defaults). The page sends JSON
messages (``settings``, ``play``, ``pause``, ``step``, ``reset``, ``add``, ``remove``,
``points_csv``, ``python``, ``export``); the channel answers with ``points`` (the data, with
each input feature's map), ``frame`` (the network's state after some steps, at most
``MAX_FPS`` a second while playing), ``points_csv``, ``python``, ``exported``, ``paused`` and
``error`` (one line). Training runs in a
worker thread so that the server keeps serving other tabs. The session ends when its tab
closes or after ``idle_seconds`` with no message while paused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from deepfit.errors import DataError, DeepfitError
from deepfit.playground.export import python_code, save_run
from deepfit.playground.link import decode, link_message, points_csv
from deepfit.playground.points import Points
from deepfit.playground.session import Session, check_loss
from deepfit.playground.settings import Settings, controls

MAX_FPS = 60


class Channel:
    """The messages of one tab: a ``Session`` and whether it is playing."""

    def __init__(self, websocket: WebSocket, key: str, out: Path, idle_seconds: float) -> None:
        self.websocket, self.key, self.out, self.idle = websocket, key, out, idle_seconds
        self.session: Optional[Session] = None
        self.upload: Optional[Points] = None
        self.playing = False
        self.inbox: asyncio.Queue = asyncio.Queue()

    async def run(self) -> None:
        await self.websocket.send_json({"type": "hello", "session": self.key,
                                        "controls": controls()})
        reader = asyncio.create_task(self._read())
        try:
            await self._loop()
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the tab closed
        finally:
            reader.cancel()

    async def _read(self) -> None:
        try:
            while True:
                await self.inbox.put(await self.websocket.receive_json())
        except Exception:  # closed, or not JSON: the loop ends the session
            await self.inbox.put(None)

    async def _loop(self) -> None:
        last = 0.0
        while True:
            if self.playing and self.inbox.empty():
                wait = last + 1 / MAX_FPS - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                last = time.perf_counter()
                await self._guarded(self._tick())
                continue
            try:
                message = await asyncio.wait_for(self.inbox.get(), None if self.playing
                                                 else self.idle)
            except asyncio.TimeoutError:
                await self._send({"type": "error", "fatal": True, "message": "the session "
                                  f"ended after {self.idle / 60:g} idle minutes; reload the "
                                  "page"})
                await self.websocket.close()
                return
            if message is None:
                return
            await self._guarded(self.handle(message))

    async def _guarded(self, work: Any) -> None:
        """Run ``work``; an error pauses the run and is one line on the page."""
        try:
            await work
        except (WebSocketDisconnect, OSError):
            raise  # the tab closed: the session ends
        except DeepfitError as exc:
            self.playing = False
            await self._send({"type": "error", "message": str(exc)})
        except Exception as exc:  # a deepfit bug: one line on the page, the log has more
            if WebSocketState.DISCONNECTED in (self.websocket.client_state,
                                               self.websocket.application_state):
                raise
            traceback.print_exc(file=sys.stderr)
            self.playing = False
            await self._send({"type": "error", "message": f"internal error: "
                              f"{type(exc).__name__}: {exc} (a deepfit bug)"})

    async def _tick(self) -> None:
        session = self.session
        assert session is not None
        s, n = session.settings, session.settings.speed
        if s.stop_epoch:
            n = min(n, s.stop_epoch * session.steps_per_epoch - session.step_count)
        if n > 0:
            frame = await asyncio.to_thread(self._advance, session, n)
            await self._send(frame)
        if s.stop_epoch and session.step_count >= s.stop_epoch * session.steps_per_epoch:
            self.playing = False
            await self._send({"type": "paused", "reason": f"stopped at epoch {s.stop_epoch}"})

    @staticmethod
    def _advance(session: Session, n: int) -> dict[str, Any]:
        session.step(n)
        return session.frame()

    async def handle(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "settings":
            settings = Settings.from_dict(message.get("settings"))
            shared = decode(message["points"]) if "points" in message else None
            if shared is not None and settings.data == "upload":  # a link's uploaded points
                self.upload = dataclasses.replace(shared, train=np.ones(len(shared.y), bool))
            if self.session is None:
                self.session = Session(settings, self.upload)
            elif not self.session.configure(settings, self.upload) and shared is None:
                return  # only the pace changed: the run goes on
            if shared is not None:  # the link's points and split, exactly
                check_loss(settings, shared)
                self.session.set_points(shared)
                self.session.reset()
            if self.playing:  # the page shows "play" again
                await self._send({"type": "paused", "reason": "new settings"})
            self.playing = False
            await self._send(self._points(self.session))
            await self._send(await asyncio.to_thread(self.session.frame))
            return
        session = self._session()
        if kind == "play":
            self.playing = True
        elif kind == "pause":
            self.playing = False
            await self._send({"type": "paused", "reason": "paused"})
        elif kind == "step":
            self.playing = False
            await self._send(await asyncio.to_thread(self._advance, session, 1))
        elif kind == "reset":
            self.playing = False
            session.reset()
            await self._send(await asyncio.to_thread(session.frame))
        elif kind in ("add", "remove"):
            x, y = _number(message, "x"), _number(message, "y")
            if kind == "add":
                session.set_points(session.points.with_point(x, y, _number(message, "label")))
            else:
                session.set_points(session.points.without_point_near(
                    x, y, _number(message, "radius")))
            await self._send(self._points(session))
            if not self.playing:
                await self._send(await asyncio.to_thread(session.frame))
        elif kind == "points_csv":
            await self._send({"type": "points_csv", "csv": points_csv(session.points)})
        elif kind == "python":
            await self._send({"type": "python", **python_code(session)})
        elif kind == "export":
            self.playing = False
            name = message.get("name") or None
            if name is not None and not isinstance(name, str):
                raise DataError("export: the run name must be text")
            path = await asyncio.to_thread(save_run, session, self.out, name)
            await self._send({"type": "exported", "path": str(path.resolve()),
                              "note": f"the page's network after step {session.step_count}, "
                              "its weights unchanged, with the page's points and split"})
        else:
            raise DataError(f"message: unknown type {kind!r}")

    @staticmethod
    def _points(session: Session) -> dict[str, Any]:
        """The points message, with the points' link text when the settings do not make
        them (``deepfit.playground.link``)."""
        return {**session.points_message(), **link_message(session.settings, session.points)}

    def _session(self) -> Session:
        if self.session is None:
            raise DataError("message: send the settings first")
        return self.session

    async def _send(self, message: dict[str, Any]) -> None:
        await self.websocket.send_json(message)


def _number(message: dict, key: str) -> float:
    value = message.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise DataError(f"message: '{key}' must be a number, not {value!r}")
    return float(value)
