"""The API's pagination: limit and offset, with a ceiling on the limit."""

from rest_framework import pagination


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """`?limit=&offset=`. A limit above `max_limit` is served `max_limit` rows, not refused,
    so a client asking for "everything" pages through it instead of holding a worker."""

    max_limit = 500
