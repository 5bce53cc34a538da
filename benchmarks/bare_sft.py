"""A bare TRL + PEFT script, the baseline of bench_train_overhead: the same training as a
tuneboard run (same data files, hyperparameters and evaluation) with nothing of tuneboard's:
no events, no callbacks, no job. Usage: python benchmarks/bare_sft.py CONFIG.json DATA_DIR OUT_DIR"""

import json
import sys

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer


def rows(path):
    with open(path) as fh:
        return [{"messages": json.loads(line)} for line in fh if line.strip()]


def main(config_path, data_dir, out_dir):
    c = json.load(open(config_path))
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(c["base_model"])
    model = AutoModelForCausalLM.from_pretrained(c["base_model"], dtype=torch.float32)
    train, val = rows(f"{data_dir}/train.jsonl"), rows(f"{data_dir}/validation.jsonl")
    args = SFTConfig(output_dir=out_dir, max_steps=c["max_steps"], per_device_train_batch_size=c["batch_size"],
                     per_device_eval_batch_size=c["batch_size"], learning_rate=c["learning_rate"],
                     lr_scheduler_type="cosine", warmup_steps=c["warmup_ratio"], eval_strategy="steps",
                     eval_steps=c["eval_every"], save_strategy="steps", save_steps=c["eval_every"], save_total_limit=2,
                     load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
                     logging_steps=1, seed=c["seed"], data_seed=c["seed"], max_length=c["max_seq_len"],
                     assistant_only_loss=True, bf16=False, gradient_checkpointing=False, use_cpu=True,
                     report_to=[], disable_tqdm=True)
    peft = LoraConfig(r=c["lora_rank"], lora_alpha=c["lora_alpha"], lora_dropout=c["lora_dropout"],
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                      modules_to_save=c["modules_to_save"] or None, task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(train),
                         eval_dataset=Dataset.from_list(val), processing_class=tok, peft_config=peft)
    trainer.train()
    trainer.save_model(f"{out_dir}/adapter")
    print(json.dumps({"final_eval_loss": trainer.state.best_metric, "steps": trainer.state.global_step}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
