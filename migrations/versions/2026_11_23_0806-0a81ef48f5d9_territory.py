"""Territory: jurisdictions, units, grid cells, road segments, assets, workstations.

Revision ID: 0a81ef48f5d9
Revises: 
Create Date: 2026-11-23 08:06:06.588522+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = '0a81ef48f5d9'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_geospatial_table('jurisdictions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('level', sa.Enum('district', 'street', 'community', name='jurisdictionlevel', native_enum=False, length=32), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=400), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['jurisdictions.id'], name=op.f('fk_jurisdictions_parent_id_jurisdictions'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jurisdictions')),
    sa.UniqueConstraint('code', name=op.f('uq_jurisdictions_code'))
    )
    op.create_geospatial_index('idx_jurisdictions_geom', 'jurisdictions', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_jurisdictions_parent_id'), 'jurisdictions', ['parent_id'], unique=False)
    op.create_index(op.f('ix_jurisdictions_path'), 'jurisdictions', ['path'], unique=False)
    op.create_geospatial_table('grid_cells',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['jurisdictions.id'], name=op.f('fk_grid_cells_community_id_jurisdictions'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grid_cells')),
    sa.UniqueConstraint('code', name=op.f('uq_grid_cells_code'))
    )
    op.create_geospatial_index('idx_grid_cells_geom', 'grid_cells', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_grid_cells_community_id'), 'grid_cells', ['community_id'], unique=False)
    op.create_geospatial_table('road_segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('road_name', sa.String(length=100), nullable=False),
    sa.Column('grade', sa.Enum('trunk', 'secondary', 'branch', 'back_lane', name='roadgrade', native_enum=False, length=32), nullable=False),
    sa.Column('excellence', sa.Enum('excellent', 'outstanding', 'ultimate', name='excellencegrade', native_enum=False, length=32), nullable=True),
    sa.Column('length_m', sa.Float(), nullable=False),
    sa.Column('street_id', sa.Integer(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='LINESTRING', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['street_id'], ['jurisdictions.id'], name=op.f('fk_road_segments_street_id_jurisdictions'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_road_segments')),
    sa.UniqueConstraint('code', name=op.f('uq_road_segments_code'))
    )
    op.create_geospatial_index('idx_road_segments_geom', 'road_segments', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_road_segments_street_id'), 'road_segments', ['street_id'], unique=False)
    op.create_table('units',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=True),
    sa.Column('kind', sa.Enum('functional_department', 'street_office', 'utility', 'command_centre', name='unitkind', native_enum=False, length=32), nullable=False),
    sa.Column('jurisdiction_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['jurisdiction_id'], ['jurisdictions.id'], name=op.f('fk_units_jurisdiction_id_jurisdictions'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_units')),
    sa.UniqueConstraint('code', name=op.f('uq_units_code'))
    )
    op.create_index(op.f('ix_units_jurisdiction_id'), 'units', ['jurisdiction_id'], unique=False)
    op.create_geospatial_table('workstations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('street_id', sa.Integer(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['street_id'], ['jurisdictions.id'], name=op.f('fk_workstations_street_id_jurisdictions'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workstations')),
    sa.UniqueConstraint('code', name=op.f('uq_workstations_code'))
    )
    op.create_geospatial_index('idx_workstations_geom', 'workstations', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_workstations_street_id'), 'workstations', ['street_id'], unique=False)
    op.create_geospatial_table('assets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('asset_type', sa.Enum('manhole_cover', 'lamp_post', 'trash_bin', 'public_toilet', 'sign', 'fire_hydrant', name='assettype', native_enum=False, length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('owner_unit_id', sa.Integer(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_unit_id'], ['units.id'], name=op.f('fk_assets_owner_unit_id_units'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assets')),
    sa.UniqueConstraint('code', name=op.f('uq_assets_code'))
    )
    op.create_geospatial_index('idx_assets_geom', 'assets', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_assets_asset_type'), 'assets', ['asset_type'], unique=False)
    op.create_index(op.f('ix_assets_owner_unit_id'), 'assets', ['owner_unit_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_assets_owner_unit_id'), table_name='assets')
    op.drop_index(op.f('ix_assets_asset_type'), table_name='assets')
    op.drop_geospatial_index('idx_assets_geom', table_name='assets', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('assets')
    op.drop_index(op.f('ix_workstations_street_id'), table_name='workstations')
    op.drop_geospatial_index('idx_workstations_geom', table_name='workstations', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('workstations')
    op.drop_index(op.f('ix_units_jurisdiction_id'), table_name='units')
    op.drop_table('units')
    op.drop_index(op.f('ix_road_segments_street_id'), table_name='road_segments')
    op.drop_geospatial_index('idx_road_segments_geom', table_name='road_segments', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('road_segments')
    op.drop_index(op.f('ix_grid_cells_community_id'), table_name='grid_cells')
    op.drop_geospatial_index('idx_grid_cells_geom', table_name='grid_cells', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('grid_cells')
    op.drop_index(op.f('ix_jurisdictions_path'), table_name='jurisdictions')
    op.drop_index(op.f('ix_jurisdictions_parent_id'), table_name='jurisdictions')
    op.drop_geospatial_index('idx_jurisdictions_geom', table_name='jurisdictions', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('jurisdictions')

