#!/usr/bin/env python3
"""A Hugging Face causal language model as a collapse command stage: the
paper's language-model loop (Shumailov et al.: fine-tune the pretrained
model on the previous generation's text, then write 64-token
continuations by beam search, 5 beams, repetition penalty 3.0, as the
released code does).

    [model]
    kind = "command"
    command = ["python3", "../examples/stages/hf_causal_lm.py", "{train}", "{out}", "{seed}", "{n}", "{model_dir}",
               "--base", "/models/opt-125m"]

Each generation starts again from --base (a local folder: no downloads),
fine-tunes it on T_k's `text` and saves the result to {model_dir}.
--tiny builds a small randomly initialised GPT-2 instead, with the run's
own tokenizer (COLLAPSE_TOKENIZER): what the test runs, where no model is
at hand. Needs torch and transformers (and pyarrow).
"""
import argparse
import os

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast


def load(args):
    if args.tiny:
        tok = PreTrainedTokenizerFast(tokenizer_file=os.environ["COLLAPSE_TOKENIZER"])
        config = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=64, n_layer=2, n_head=2)
        return tok, GPT2LMHeadModel(config)
    tok = AutoTokenizer.from_pretrained(args.base)
    return tok, AutoModelForCausalLM.from_pretrained(args.base)


def main():
    ap = argparse.ArgumentParser()
    for name in ["train", "out", "seed", "n", "model_dir"]:
        ap.add_argument(name)
    ap.add_argument("--base", help="a local pretrained model folder")
    ap.add_argument("--tiny", action="store_true", help="a small random GPT-2 with the run's tokenizer")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--block", type=int, default=64, help="tokens a training row and a continuation")
    ap.add_argument("--prompt-tokens", type=int, default=8)
    ap.add_argument("--beams", type=int, default=5)
    args = ap.parse_args()
    if not args.tiny and not args.base:
        ap.error("give --base MODEL_DIR (a local model) or --tiny")
    seed, n = int(args.seed), int(args.n)
    torch.manual_seed(seed % 2**63)
    tok, model = load(args)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token or tok.convert_ids_to_tokens(0)
    texts = [t for t in pq.read_table(args.train).column("text").to_pylist() if t]

    # Fine-tune on T_k.
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(seed % 2**63)
    for _ in range(args.epochs):
        order = torch.randperm(len(texts), generator=g).tolist()
        for i in range(0, len(order), 8):
            batch = tok([texts[j] for j in order[i:i + 8]], return_tensors="pt", padding=True,
                        truncation=True, max_length=args.block)
            labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
            loss = model(**batch, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
    model.eval()
    model.save_pretrained(args.model_dir)

    # Continuations of each T_k row's first tokens, by beam search.
    rows = []
    with torch.no_grad():
        for i in range(n):
            ids = tok(texts[i % len(texts)], return_tensors="pt", truncation=True,
                      max_length=args.prompt_tokens)["input_ids"]
            outs = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.block,
                                  num_beams=args.beams, repetition_penalty=3.0, do_sample=False,
                                  pad_token_id=tok.pad_token_id)
            text = tok.decode(outs[0][ids.shape[1]:], skip_special_tokens=True).replace("\n", " ").strip()
            rows.append(text or tok.decode(ids[0], skip_special_tokens=True))
    pq.write_table(pa.table({"text": rows}), args.out)
    print(f"fine-tuned on {len(texts)} rows (last loss {loss.item():.3f}); wrote {n} continuations")


if __name__ == "__main__":
    main()
