"""The custom layers of the keras_text family's backbones, registered as KerasHub registers its own:
the --model-code file of the family's .keras cases (written by bench/coverage_families/keras_text.py)."""

import keras


@keras.saving.register_keras_serializable(package="bench_text")
class PositionEmbedding(keras.layers.Layer):
    """Learned positions 0..seq-1, added to the token embeddings (KerasHub's PositionEmbedding)."""

    def __init__(self, sequence_length, **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = sequence_length

    def build(self, input_shape):
        self.positions = self.add_weight(
            shape=(self.sequence_length, input_shape[-1]), initializer="random_normal", name="positions"
        )

    def call(self, x):
        length = keras.ops.shape(x)[1]
        return x + keras.ops.expand_dims(self.positions[:length], 0)

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length}


@keras.saving.register_keras_serializable(package="bench_text")
class TransformerBlock(keras.layers.Layer):
    """Self-attention over the padding mask (causal for a decoder), then a feed-forward layer."""

    def __init__(self, heads, hidden, causal=False, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.hidden, self.causal = heads, hidden, causal
        self.attention = keras.layers.MultiHeadAttention(heads, hidden // heads)
        self.norm1 = keras.layers.LayerNormalization()
        self.norm2 = keras.layers.LayerNormalization()
        self.up = keras.layers.Dense(hidden * 2, activation="gelu")
        self.down = keras.layers.Dense(hidden)

    def call(self, x, padding_mask):
        mask = keras.ops.cast(padding_mask, "bool")
        attention_mask = keras.ops.logical_and(keras.ops.expand_dims(mask, 1), keras.ops.expand_dims(mask, 2))
        x = self.norm1(x + self.attention(x, x, attention_mask=attention_mask, use_causal_mask=self.causal))
        return self.norm2(x + self.down(self.up(x)))

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "hidden": self.hidden, "causal": self.causal}
