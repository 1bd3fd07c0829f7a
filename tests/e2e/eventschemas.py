"""eventschemas.py: the bus event schemas of sdk/schemas/events/, loaded with the shapes they share
(the envelope and the store's read ops), and a validator per topic."""
import glob
import json
import os

import jsonschema
from jsonschema import Draft202012Validator

from harness import SOURCE_DIR

DIR = os.path.join(SOURCE_DIR, "sdk", "schemas", "events")
docs = {}
for path in sorted(glob.glob(os.path.join(DIR, "*.json"))):
    with open(path) as f:
        docs[os.path.basename(path)[:-5]] = json.load(f)
others = [os.path.join(SOURCE_DIR, "sdk", "envelope-v1.schema.json"),
          *sorted(glob.glob(os.path.join(SOURCE_DIR, "sdk", "schemas", "store", "*.json")))]
resources = list(docs.values())
for path in others:
    with open(path) as f:
        resources.append(json.load(f))

try:
    from referencing import Registry, Resource

    registry = Registry().with_resources([(d["$id"], Resource.from_contents(d)) for d in resources])

    def validator(topic):
        return Draft202012Validator(docs[topic], registry=registry)
except ImportError:  # jsonschema before 4.18 (Debian bookworm's 4.10)
    store = {d["$id"]: d for d in resources}

    def validator(topic):
        return Draft202012Validator(docs[topic], resolver=jsonschema.RefResolver("", docs[topic], store=store))


def errors(topic, payload):
    return [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in validator(topic).iter_errors(payload)]
