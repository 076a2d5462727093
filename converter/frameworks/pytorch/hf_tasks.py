"""The task of a Hugging Face folder: read from ``config.architectures``, or given by --task.

Task names are Optimum's (``optimum-cli export onnx --task``) where it has one; ``encoder`` is
the encoder of an encoder-decoder (Whisper's), which Optimum exports only as part of a pair.
Decoders are exported without their KV cache (Optimum's ``text-generation``, not ``-with-past``).
"""

from __future__ import annotations

from dataclasses import dataclass

from converter.errors import UserError


@dataclass(frozen=True)
class Task:
    name: str
    auto_class: str  # the transformers Auto class that builds the model with this task's head
    help: str


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("feature-extraction", "AutoModel", "the base model's hidden states"),
        Task("text-classification", "AutoModelForSequenceClassification", "one label per sequence"),
        Task("token-classification", "AutoModelForTokenClassification", "one label per token"),
        Task("fill-mask", "AutoModelForMaskedLM", "masked language model logits"),
        Task("text-generation", "AutoModelForCausalLM", "causal language model logits, no KV cache"),
        Task("question-answering", "AutoModelForQuestionAnswering", "start and end logits"),
        Task("image-classification", "AutoModelForImageClassification", "one label per image"),
        Task("audio-classification", "AutoModelForAudioClassification", "one label per clip"),
        Task("automatic-speech-recognition", "AutoModelForCTC", "CTC logits per audio frame"),
        Task("encoder", "AutoModel", "the encoder of an encoder-decoder (Whisper's)"),
    )
}
AUTO = "auto"
TASK_CHOICES = (AUTO, *TASKS)

# The head an architecture's class name ends with, and its task (checked in order: longest first).
_HEADS = (
    ("ForConditionalGeneration", "encoder"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForImageClassification", "image-classification"),
    ("ForAudioClassification", "audio-classification"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForCTC", "automatic-speech-recognition"),
    ("Model", "feature-extraction"),
)
AUDIO_INPUTS = ("input_values", "input_features")


def task_from_architecture(architecture: str, encoder_decoder: bool) -> str | None:
    """The task an architecture's head names (``BertForSequenceClassification``: text-classification)."""
    for suffix, task in _HEADS:
        if architecture.endswith(suffix):
            return "encoder" if encoder_decoder else task
    return None


def choose_task(requested: str, architectures: list[str], encoder_decoder: bool) -> tuple[str, str]:
    """(task, why) from --task or the config's first architecture."""
    if requested != AUTO:
        if encoder_decoder and requested != "encoder":
            raise UserError.bad_value(
                "task",
                requested,
                "the folder holds an encoder-decoder, of which only the encoder is converted",
                "pass --task encoder, or leave --task auto",
            )
        return requested, "from --task"
    for architecture in architectures[:1]:
        task = task_from_architecture(architecture, encoder_decoder)
        if task is not None:
            return task, f"from config.architectures: {architecture}"
    if encoder_decoder:
        return "encoder", "the config names no architecture; an encoder-decoder"
    named = (
        f"names {architectures[0]}, whose head this tool does not know" if architectures else "names no architecture"
    )
    raise UserError(
        f"the folder's config.json {named}",
        f"pass --task, one of {', '.join(TASKS)}",
    )


def refine_for_audio(task: str, main_input: str) -> str:
    """A sequence classifier that takes audio is an audio classifier (Wav2Vec2ForSequenceClassification)."""
    if task == "text-classification" and main_input in AUDIO_INPUTS:
        return "audio-classification"
    return task
