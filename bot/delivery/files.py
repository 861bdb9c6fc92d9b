"""Files for users (charts): the jobs.ports.FileUploader for Slack, through files_upload_v2 as result CSVs are."""

from __future__ import annotations

from slack_sdk import WebClient

from jobs.ports import ReplyTo


class SlackFileUploader:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def upload(self, reply: ReplyTo, filename: str, content: bytes, title: str, comment: str) -> None:
        self.client.files_upload_v2(channel=reply.channel, content=content, filename=filename, title=title,
                                    initial_comment=comment)
