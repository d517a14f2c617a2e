#!/usr/bin/env python3
"""One request through a real SDK (openai or anthropic), result as one JSON line on stdout.

Used by the Rust e2e tests (tests/e2e/llm.rs) so that keel is checked against what real
clients do with its answers: how they parse streams, which exceptions they raise. The SDKs'
own retries are off (max_retries=0) so every attempt the fake provider sees is keel's.

Exit code 3 with {"skip": ...} when the SDK is not installed.

Output: {"ok": true, "text", "model", "id", "usage": {"input", "output"}, "events"}
     or {"ok": false, "error": <exception class>, "status": <http status or null>,
         "message", "text": <text received before the error>}
"""
import argparse
import json
import sys


def emit(obj, code=0):
    print(json.dumps(obj), flush=True)
    sys.exit(code)


def run_openai(args):
    try:
        import openai
    except ImportError:
        emit({"skip": "python package 'openai' is not installed"}, 3)
    client = openai.OpenAI(base_url=args.base_url + "/v1", api_key=args.key,
                           max_retries=0, timeout=args.timeout)
    messages = [{"role": "user", "content": args.prompt}]
    text, model, ident, usage, events = "", None, None, None, 0
    extra = {"extra_headers": {"Idempotency-Key": args.idempotency_key}} if args.idempotency_key else {}
    try:
        if args.stream:
            opts = {"stream_options": {"include_usage": True}} if args.usage else {}
            stream = client.chat.completions.create(model=args.model, messages=messages,
                                                    stream=True, **opts, **extra)
            for chunk in stream:
                events += 1
                model, ident = chunk.model, chunk.id
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
                if chunk.usage:
                    usage = {"input": chunk.usage.prompt_tokens, "output": chunk.usage.completion_tokens}
        else:
            r = client.chat.completions.create(model=args.model, messages=messages, **extra)
            text, model, ident = r.choices[0].message.content, r.model, r.id
            if r.usage:
                usage = {"input": r.usage.prompt_tokens, "output": r.usage.completion_tokens}
    except openai.APIError as e:
        emit({"ok": False, "error": type(e).__name__, "status": getattr(e, "status_code", None),
              "message": str(e), "text": text})
    emit({"ok": True, "text": text, "model": model, "id": ident, "usage": usage, "events": events})


def run_anthropic(args):
    try:
        import anthropic
    except ImportError:
        emit({"skip": "python package 'anthropic' is not installed"}, 3)
    client = anthropic.Anthropic(base_url=args.base_url, api_key=args.key,
                                 max_retries=0, timeout=args.timeout)
    messages = [{"role": "user", "content": args.prompt}]
    text, model, ident, usage, events = "", None, None, None, 0
    extra = {"extra_headers": {"Idempotency-Key": args.idempotency_key}} if args.idempotency_key else {}
    try:
        if args.stream:
            with client.messages.stream(model=args.model, max_tokens=256, messages=messages, **extra) as s:
                for event in s:
                    events += 1
                    if event.type == "text":
                        text += event.text
                final = s.get_final_message()
            model, ident = final.model, final.id
            usage = {"input": final.usage.input_tokens, "output": final.usage.output_tokens}
        else:
            r = client.messages.create(model=args.model, max_tokens=256, messages=messages, **extra)
            text = "".join(b.text for b in r.content if b.type == "text")
            model, ident = r.model, r.id
            usage = {"input": r.usage.input_tokens, "output": r.usage.output_tokens}
    except anthropic.APIError as e:
        emit({"ok": False, "error": type(e).__name__, "status": getattr(e, "status_code", None),
              "message": str(e), "text": text})
    emit({"ok": True, "text": text, "model": model, "id": ident, "usage": usage, "events": events})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("sdk", choices=["openai", "anthropic"])
    p.add_argument("--base-url", required=True)
    p.add_argument("--key", default="sk-test")
    p.add_argument("--model", default="gpt-test")
    p.add_argument("--prompt", default="Say the sentence.")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--usage", action="store_true", help="openai: stream_options.include_usage")
    p.add_argument("--idempotency-key")
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()
    (run_openai if args.sdk == "openai" else run_anthropic)(args)


if __name__ == "__main__":
    main()
