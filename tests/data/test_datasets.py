import torch

from streamguard.data.datasets import LengthGroupedBatchSampler, TokenCollator, TokenDataset
from streamguard.data.tokenizer import encode_split, load_tokenizer, train_bpe


def _sampler(lengths, seed, weights=None, shuffle=True):
    gen = torch.Generator().manual_seed(seed)
    return LengthGroupedBatchSampler(torch.tensor(lengths), 4, gen, weights=weights, window=2, shuffle=shuffle)


def test_length_grouped_batches_cover_everything_once_and_group_lengths():
    lengths = [(i * 37) % 101 + 1 for i in range(64)]
    batches = list(_sampler(lengths, 0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(64)) and len(batches) == 16
    # Within a window of 8 the batches are sorted by length: padding per batch stays small.
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    random_spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b)
                        for b in torch.randperm(64, generator=torch.Generator().manual_seed(1)).view(16, 4).tolist())
    assert spread < random_spread


def test_length_grouped_batches_are_seeded_and_eval_order_is_fixed():
    lengths = list(range(1, 41))
    assert list(_sampler(lengths, 3)) == list(_sampler(lengths, 3))
    assert list(_sampler(lengths, 3)) != list(_sampler(lengths, 4))
    assert [i for b in _sampler(lengths, 3, shuffle=False) for i in b] == list(range(40))
    # Evaluation keeps dataset order even when lengths are unsorted (OOF predictions index by it).
    assert [i for b in _sampler(lengths[::-1], 3, shuffle=False) for i in b] == list(range(40))


def test_weighted_sampler_balances_classes():
    labels = torch.tensor([1] * 10 + [0] * 90)
    weights = (1.0 / torch.bincount(labels).double())[labels]
    drawn = torch.tensor([i for b in _sampler([5] * 100, 0, weights=weights) for i in b])
    assert 0.35 < labels[drawn].float().mean().item() < 0.65


def test_dynamic_padding_pads_to_the_longest_in_batch():
    tok = train_bpe(["int main() { return 0; }", "void f(char *s) { puts(s); }"] * 20, 300, 1)
    packed = encode_split(tok, ["int a;", "int main() { return 0; }"], [0, 1], 64)
    ds = TokenDataset(packed)
    batch = TokenCollator(tok.pad_token_id)([ds[0], ds[1]])
    lengths = packed["lengths"].tolist()
    assert batch["input_ids"].shape == (2, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert (batch["input_ids"][0, lengths[0]:] == tok.pad_token_id).all()


def test_truncation_keeps_the_end_token_and_counts(tmp_path):
    tok = train_bpe(["int main() { return 0; }"] * 20, 300, 1)
    long_code = "int x = " + " + ".join(f"v{i}" for i in range(200)) + ";"
    packed = encode_split(tok, [long_code, "int a;"], [1, 0], 32)
    assert int(packed["n_truncated"]) == 1 and packed["lengths"].tolist()[0] == 32
    assert int(packed["input_ids"][31]) == tok.eos_token_id
    tok.save_pretrained(str(tmp_path / "tok"))
    assert load_tokenizer(tmp_path / "tok")("int a;")["input_ids"] == tok("int a;")["input_ids"]


def test_windowed_items_split_a_function_into_consecutive_windows_and_batch_one_row_each():
    tok = train_bpe(["int main() { return 0; }"] * 20, 300, 1)
    long_code = "int x = " + " + ".join(f"v{i}" for i in range(200)) + ";"
    packed = encode_split(tok, [long_code, "int a;"], [1, 0], 3 * 32)  # up to three windows of 32
    ds = TokenDataset(packed, window=32)
    windows, label = ds[0]
    assert label == 1 and [len(w) for w in windows] == [32, 32, 32]
    assert torch.equal(torch.cat(windows), TokenDataset(packed)[0][0])  # nothing lost, order kept
    assert int(windows[-1][-1]) == tok.eos_token_id
    batch = TokenCollator(tok.pad_token_id)([ds[1], ds[0]])
    assert batch["input_ids"].shape == (4, 32)
    assert batch["window_owner"].tolist() == [0, 1, 1, 1]
    assert batch["attention_mask"][0].sum() == packed["lengths"][1]


def test_flow_tags_follow_each_tokens_line_through_truncation_windows_and_padding():
    tok = train_bpe(["int main() { return 0; }", "void f(char *s) { puts(s); }"] * 20, 300, 1)
    code = "void f(char *s)\n{\n    puts(s);\n    return;\n}\n"
    line_tags = {1: 9, 3: 10}  # header: source + tainted; line 3: sink + tainted; other lines none
    packed = encode_split(tok, [code, code], [1, 0], 64, [line_tags, {}])
    n = int(packed["lengths"][0])
    ids, tags = packed["input_ids"][:n].tolist(), packed["flow_tags"][:n].tolist()
    assert packed["flow_tags"].dtype == torch.uint8 and len(packed["flow_tags"]) == len(packed["input_ids"])
    by_line: dict[int, set] = {}
    line = 1
    for i, t in zip(ids[1:-1], tags[1:-1]):  # between <s> and </s>
        text = tok.decode([i])
        if text.strip():
            by_line.setdefault(line, set()).add(t)
        line += text.count("\n")
    assert by_line == {1: {9}, 2: {0}, 3: {10}, 4: {0}, 5: {0}}
    assert tags[0] == tags[-1] == 0 and not packed["flow_tags"][n:].any()  # special tokens; untagged function
    cut = encode_split(tok, [code], [1], 8, [line_tags])  # truncated: tags cut with the ids, end token untagged
    assert cut["flow_tags"].tolist() == tags[:7] + [0] and int(cut["input_ids"][7]) == tok.eos_token_id
    windows, _ = TokenDataset(packed, window=4)[0]
    assert all(w.shape == (2, 4) for w in windows[:-1])
    assert torch.equal(torch.cat(windows, dim=1)[1], torch.tensor(tags))
    batch = TokenCollator(tok.pad_token_id)([TokenDataset(packed)[1], TokenDataset(packed)[0]])
    assert torch.equal(batch["flow_tags"][1], torch.tensor(tags)) and not batch["flow_tags"][0].any()
    assert "flow_tags" not in TokenCollator(tok.pad_token_id)([TokenDataset(encode_split(tok, [code], [1], 64))[0]])
