"""A cloud organization is one whether a connection names it at dev.azure.com or at
{org}.visualstudio.com: the connections' organization keys, recomputed so (a connection whose
new key another already holds keeps its old one, and both stay visible to the admin).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from adobot.rest.urls import parse_organization_url, same_organization

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _rekey(same_organization)


def downgrade() -> None:  # as 0004 computed them: the organization's base URL, lower-cased
    _rekey(lambda url: parse_organization_url(url, allow_plain_http=True).base_url.lower())


def _rekey(key_of) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT name, organization_url, organization_key "
                                "FROM connections")).all()
    taken = {key for _, _, key in rows}
    for name, url, key in rows:
        new = key_of(url)
        if new != key and new not in taken:
            bind.execute(sa.text("UPDATE connections SET organization_key = :key "
                                 "WHERE name = :name"), {"key": new, "name": name})
            taken.discard(key)
            taken.add(new)
