#!/usr/bin/python3
"""Drive one python-omemo device for the interop tests of e2e/omemo.

Run with Debian's interpreter (/usr/bin/python3), which sees the Debian
packages python3-omemo, python3-oldmemo and python3-xmlschema:

    /usr/bin/python3 omemo_driver.py STATE_DIR BARE_JID

It reads one JSON request a line on stdin and writes one JSON answer a line
on stdout. STATE_DIR keeps the python-omemo storage and the toy PEP service
(device lists and bundles), so a restarted driver continues its sessions.

Requests ("op"):
  init                     create or load the device      -> device_id, fingerprint
  publish jid devicelist bundles{id: xml}
                           what another account published (its device list
                           is fed to the session manager)
  fetch                    this device's published data   -> devicelist, bundles
  encrypt to plaintext     -> xml (an <encrypted/> element), errors
  decrypt from xml         -> plaintext (null for an empty message), device
  quit
Every answer carries "outbox": the messages python-omemo sent on its own
(empty messages completing a key exchange or preventing staleness), as
{to, xml}; and "error" when the request failed.
"""

import asyncio
import json
import os
import sys
import xml.etree.ElementTree as ET

import omemo
import oldmemo
import oldmemo.etree
from oldmemo.oldmemo import NAMESPACE

STATE_DIR = sys.argv[1]
OWN_JID = sys.argv[2]
PUBSUB_PATH = os.path.join(STATE_DIR, "pubsub.json")
STORAGE_PATH = os.path.join(STATE_DIR, "storage.json")

PUBSUB = {"lists": {}, "bundles": {}}
OUTBOX = []


def save_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def load_json(path, default):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return default


def tostring(elt):
    return ET.tostring(elt, encoding="unicode")


class JSONStorage(omemo.Storage):
    """The storage python-omemo asks for, in a JSON file written after each
    request."""

    def __init__(self, path):
        super().__init__(disable_cache=True)
        self.path = path
        self.data = load_json(path, {})

    async def _load(self, key):
        if key in self.data:
            return omemo.Just(self.data[key])
        return omemo.Nothing()

    async def _store(self, key, value):
        self.data[key] = value

    async def _delete(self, key):
        self.data.pop(key, None)

    def flush(self):
        save_json(self.path, self.data)


class SessionManager(omemo.SessionManager):
    @staticmethod
    async def _upload_bundle(bundle):
        PUBSUB["bundles"][f"{bundle.bare_jid}/{bundle.device_id}"] = tostring(
            oldmemo.etree.serialize_bundle(bundle))

    @staticmethod
    async def _download_bundle(namespace, bare_jid, device_id):
        x = PUBSUB["bundles"].get(f"{bare_jid}/{device_id}")
        if x is None:
            raise omemo.BundleNotFound(f"no bundle for {bare_jid}/{device_id}")
        return oldmemo.etree.parse_bundle(ET.fromstring(x), bare_jid, device_id)

    @staticmethod
    async def _delete_bundle(namespace, device_id):
        PUBSUB["bundles"].pop(f"{OWN_JID}/{device_id}", None)

    @staticmethod
    async def _upload_device_list(namespace, device_list):
        PUBSUB["lists"][OWN_JID] = tostring(oldmemo.etree.serialize_device_list(device_list))

    @staticmethod
    async def _download_device_list(namespace, bare_jid):
        x = PUBSUB["lists"].get(bare_jid)
        if x is None:
            return {}
        return oldmemo.etree.parse_device_list(ET.fromstring(x))

    async def _evaluate_custom_trust_level(self, device):
        # Blind trust before verification: every new device is trusted.
        if device.trust_level_name == "distrusted":
            return omemo.TrustLevel.DISTRUSTED
        return omemo.TrustLevel.TRUSTED

    async def _make_trust_decision(self, undecided, identifier):
        for device in undecided:
            await self.set_trust(device.bare_jid, device.identity_key, "trusted")

    @staticmethod
    async def _send_message(message, bare_jid):
        OUTBOX.append({"to": bare_jid, "xml": tostring(oldmemo.etree.serialize_message(message))})


async def main():
    global PUBSUB
    PUBSUB = load_json(PUBSUB_PATH, PUBSUB)
    storage = JSONStorage(STORAGE_PATH)
    sm = None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        req = json.loads(line)
        op = req.get("op")
        resp = {}
        try:
            if op == "init":
                sm = await SessionManager.create(
                    [oldmemo.Oldmemo(storage)], storage, OWN_JID, None, "btbv")
                await sm.after_history_sync()
                device, _ = await sm.get_own_device_information()
                resp["device_id"] = device.device_id
                resp["fingerprint"] = "".join(SessionManager.format_identity_key(device.identity_key))
            elif op == "publish":
                jid = req["jid"]
                PUBSUB["lists"][jid] = req["devicelist"]
                for device_id, x in req.get("bundles", {}).items():
                    PUBSUB["bundles"][f"{jid}/{device_id}"] = x
                await sm.update_device_list(
                    NAMESPACE, jid, oldmemo.etree.parse_device_list(ET.fromstring(req["devicelist"])))
            elif op == "fetch":
                resp["devicelist"] = PUBSUB["lists"].get(OWN_JID)
                prefix = OWN_JID + "/"
                resp["bundles"] = {k[len(prefix):]: v for k, v in PUBSUB["bundles"].items() if k.startswith(prefix)}
            elif op == "encrypt":
                messages, errors = await sm.encrypt(
                    frozenset([req["to"]]), {NAMESPACE: req["plaintext"].encode("utf-8")})
                message = next(m for m in messages if m.namespace == NAMESPACE)
                resp["xml"] = tostring(oldmemo.etree.serialize_message(message))
                resp["errors"] = [repr(e) for e in errors]
            elif op == "decrypt":
                message = await oldmemo.etree.parse_message(
                    ET.fromstring(req["xml"]), req["from"], OWN_JID, sm)
                plaintext, device, _ = await sm.decrypt(message)
                resp["plaintext"] = None if plaintext is None else plaintext.decode("utf-8")
                resp["device"] = device.device_id
            elif op == "quit":
                pass
            else:
                resp["error"] = f"unknown op {op!r}"
        except Exception as e:  # reported to the Go test, which fails
            resp["error"] = f"{type(e).__name__}: {e}"
        storage.flush()
        save_json(PUBSUB_PATH, PUBSUB)
        resp["outbox"] = list(OUTBOX)
        OUTBOX.clear()
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()
        if op == "quit":
            break


asyncio.run(main())
