"""The Analytics API's wire shapes (transcripts, logs, properties, evaluations), as documented at
https://docs.voiceflow.com/api-reference/transcript/search-transcripts and its sibling pages.

Answers are read tolerantly (unknown fields ignored, optional ones defaulted): the newer shapes add
fields the v1 spec lacks, and a tool that imports a month of transcripts must not stop at one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

PropertyType = Literal["boolean", "number", "string"]
LOG_TYPES = ("action", "trace", "end")
"""The log types the docs list; anything else is refused by the importer, not guessed at."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class TranscriptProperty(_Wire):
    """A property's value as it appears on a transcript (`transcript.properties[]`)."""

    id: str
    name: str
    type: str = "string"
    value: str = ""
    metadata: dict[str, JsonValue] | None = None
    default: bool = False


class EvaluationResult(_Wire):
    """Voiceflow's evaluator's verdict on one transcript (`transcript.evaluations[]`)."""

    id: str
    name: str
    type: str = "boolean"
    value: bool | float | str | None = None
    reason: str = ""
    cost: float = 0.0
    description: str | None = None
    default: bool = False
    minimum_value: float | None = Field(default=None, alias="minimumValue")
    maximum_value: float | None = Field(default=None, alias="maximumValue")


class TranscriptSummary(_Wire):
    """A search result: the transcript without its logs."""

    id: str
    session_id: str = Field(alias="sessionID")
    project_id: str = Field(alias="projectID")
    environment_id: str | None = Field(default=None, alias="environmentID")
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    ended_at: datetime | None = Field(default=None, alias="endedAt")
    expires_at: datetime | None = Field(default=None, alias="expiresAt")
    recording_url: str | None = Field(default=None, alias="recordingURL")
    properties: list[TranscriptProperty] = Field(default_factory=list)
    evaluations: list[EvaluationResult] = Field(default_factory=list)


class TranscriptLog(_Wire):
    """One log: an `action` the user sent, a `trace` the agent emitted, or the `end`."""

    type: str
    data: JsonValue = None
    created_at: datetime | None = Field(default=None, alias="createdAt")

    @field_validator("data", mode="before")
    @classmethod
    def _decoded(cls, value: Any) -> Any:
        # The docs' generated example shows `data` as a string; every client reads an object.
        # A string holding a JSON object is read as that object, any other string kept.
        if isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    @property
    def body(self) -> dict[str, JsonValue]:
        """`data` as an object (`{}` when it is not one)."""
        return self.data if isinstance(self.data, dict) else {}


class Transcript(TranscriptSummary):
    """One transcript with its logs (`GET /v1/transcript/{id}`)."""

    logs: list[TranscriptLog] = Field(default_factory=list)


class SearchFilters(_Wire):
    """The search body: every field optional; `{}` means every transcript of the project."""

    session_id: str | None = Field(default=None, alias="sessionID")
    environment_id: str | None = Field(default=None, alias="environmentID")
    start_date: datetime | None = Field(default=None, alias="startDate")
    end_date: datetime | None = Field(default=None, alias="endDate")

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class PropertyDefinition(_Wire):
    id: str
    project_id: str = Field(alias="projectID")
    name: str
    type: str
    default: bool = False


class PropertyValue(_Wire):
    property_id: str = Field(alias="propertyID")
    transcript_id: str = Field(alias="transcriptID")
    value: str
    metadata: dict[str, JsonValue] | None = None


class EvaluationDefinition(_Wire):
    """An evaluation's definition: its prompt is the question it asks of a transcript."""

    id: str
    project_id: str = Field(alias="projectID")
    name: str
    type: str = "boolean"
    prompt: str = ""
    description: str | None = None
    enabled: bool = True
    default: bool = False


class SearchAnswer(_Wire):
    transcripts: list[TranscriptSummary]


class TranscriptAnswer(_Wire):
    transcript: Transcript


class PropertiesAnswer(_Wire):
    properties: list[PropertyDefinition]


class PropertyAnswer(_Wire):
    property: PropertyDefinition


class PropertyValuesAnswer(_Wire):
    property_values: list[PropertyValue] = Field(alias="propertyValues")


class PropertyValueAnswer(_Wire):
    property_value: PropertyValue = Field(alias="propertyValue")


class EvaluationsAnswer(_Wire):
    evaluations: list[EvaluationDefinition]


__all__ = [
    "LOG_TYPES",
    "EvaluationDefinition",
    "EvaluationResult",
    "PropertyDefinition",
    "PropertyType",
    "PropertyValue",
    "SearchFilters",
    "Transcript",
    "TranscriptLog",
    "TranscriptProperty",
    "TranscriptSummary",
]
