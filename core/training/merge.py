"""Merge an adapter into a full-precision copy of its base, save it, and check parity.

Worker side: `python -m core.training.merge RUN_DIR` with `config.json` holding
{"adapter_dir", "base_model", "output_dir", "prompts", "max_new_tokens", "tolerance"}.
The base is loaded in 16-bit (bf16) on a GPU and fp32 on a CPU, never in 4-bit: merging
into quantized weights degrades quality. Parity compares the merged model with base +
adapter on validation prompts: greedy outputs must be identical and the largest logit
difference under the tolerance; otherwise the export is recorded as failed, never as good.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from core.jobs.events import EventWriter
from core.jobs.worker import WorkerRun, run_worker
from core.weights import compute_dtype, load_base, merge_adapter


def parity(adapter_model, merged_model, tokenizer, prompts: list[list[dict]], max_new_tokens: int) -> dict[str, Any]:
    """Greedy outputs and logits of two models on the same chat prompts."""
    import torch

    same, max_diff, mismatches = 0, 0.0, []
    for messages in prompts:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        with torch.no_grad():
            a = adapter_model(**ids).logits
            b = merged_model(**ids).logits
            max_diff = max(max_diff, float((a - b).abs().max()))
            kwargs = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            out_a = adapter_model.generate(**ids, **kwargs)[0, ids["input_ids"].shape[1]:]
            out_b = merged_model.generate(**ids, **kwargs)[0, ids["input_ids"].shape[1]:]
        if torch.equal(out_a, out_b):
            same += 1
        elif len(mismatches) < 3:
            mismatches.append({"adapter": tokenizer.decode(out_a, skip_special_tokens=True),
                               "merged": tokenizer.decode(out_b, skip_special_tokens=True)})
    return {"prompts": len(prompts), "identical_greedy": same, "max_logit_diff": max_diff, "mismatches": mismatches}


def merge(config: dict, events: EventWriter) -> dict[str, Any]:
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    dtype = compute_dtype()
    tokenizer = AutoTokenizer.from_pretrained(config["adapter_dir"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    adapter_model = PeftModel.from_pretrained(load_base(config["base_model"]), config["adapter_dir"]).eval()
    events.emit("progress", stage="loaded", dtype=str(dtype).replace("torch.", ""))
    output = merge_adapter(config["base_model"], config["adapter_dir"], Path(config["output_dir"]),
                           tokenizer_from=config["adapter_dir"], replace=True)
    events.emit("progress", stage="saved", output_dir=str(output))
    reloaded = load_base(output).eval()  # check what was written
    result = parity(adapter_model, reloaded, tokenizer, config["prompts"], int(config.get("max_new_tokens", 32)))
    tolerance = float(config.get("tolerance", 1e-3 if dtype == torch.float32 else 5e-2))
    result.update(dtype=str(dtype).replace("torch.", ""), tolerance=tolerance,
                  ok=result["identical_greedy"] == result["prompts"] and result["max_logit_diff"] <= tolerance)
    return result


def merge_run(run: WorkerRun) -> None:
    run.events.emit("started")
    result = merge(run.config, run.events)
    run.events.emit("parity", **result)
    run.events.emit("finished", output_dir=run.config["output_dir"], parity_ok=result["ok"])


def main(run_dir: str) -> int:
    # A merge cannot stop between steps: SIGTERM ends it at once (the owner records the cancel).
    return run_worker(run_dir, merge_run, trap_sigterm=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
