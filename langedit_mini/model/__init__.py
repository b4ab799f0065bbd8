"""A transformers causal LM as an editor sees it: where W lives, keys, target values, statistics.

architecture  per architecture, the edited matrix and its neighbours; writing an update into W
tokens        token rows: encoding (prompt, answer) pairs, padding, the model's mode and device
keys          keys and hidden states at the subject's last token
values        target values z, optimised at the last edited layer
statistics    the preserved-key second moment C0 of a layer (cached)
tracing       subject patching: where a model reads a fact
hub           real LLMs from the Hugging Face hub, and the tiny random stand-in
"""
