import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import create_mock_engine
from sqlalchemy.types import TypeDecorator

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging. The loggers that exist already stay on: a
# migration run inside the application's process (the tests, `flask db upgrade`) would
# otherwise silence the application's own loggers for the rest of that process.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger('alembic.env')


def get_engine():
    return current_app.extensions['migrate'].db.engine


def get_engine_url():
    try:
        return get_engine().url.render_as_string(hide_password=False).replace(
            '%', '%%')
    except AttributeError:
        return str(get_engine().url).replace('%', '%%')


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option('sqlalchemy.url', get_engine_url())
target_db = current_app.extensions['migrate'].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def get_metadata():
    if hasattr(target_db, 'metadatas'):
        return target_db.metadatas[None]
    return target_db.metadata


def index_is_created_on(dialect_url):
    """Whether ``CREATE INDEX`` for a model's index is emitted on the database at
    ``dialect_url`` (an index made for one database only, with ``Index.ddl_if``, e.g.
    PostgreSQL's trigram indexes, is not emitted elsewhere). Asked of SQLAlchemy itself,
    by "creating" the index on a mock engine that only records the DDL it is given."""
    emitted = []
    engine = create_mock_engine(dialect_url, lambda statement, *args, **kwargs: emitted.append(statement))

    def created(index):
        emitted.clear()
        index.create(engine, checkfirst=False)
        return bool(emitted)

    return created


def include_object_for(dialect_url):
    """Autogenerate's ``include_object`` (``flask db migrate``, ``flask db check``): leave out
    a model's index that this database never gets, so that it is not reported as missing."""
    created = index_is_created_on(dialect_url)

    def include_object(obj, name, type_, reflected, compare_to):
        if type_ == 'index' and not reflected:
            return created(obj)
        return True

    return include_object


def render_item(type_, obj, autogen_context):
    """A new revision spells a column type of the application's (a TypeDecorator, such as
    lms.common.types.UTCDateTime) as the SQLAlchemy type it stores: revisions do not
    import the application, whose code may change after them."""
    if type_ == 'type' and isinstance(obj, TypeDecorator):
        return f'sa.{obj.impl!r}'
    return False


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url, target_metadata=get_metadata(), literal_binds=True,
        include_object=include_object_for(url), render_item=render_item,
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')

    # A copy: configure_args belongs to the one Migrate object, shared by every app and
    # every command run in this process (the callbacks below are this run's).
    conf_args = dict(current_app.extensions['migrate'].configure_args)
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives

    connectable = get_engine()
    if conf_args.get("include_object") is None:
        conf_args["include_object"] = include_object_for(connectable.url)
    if conf_args.get("render_item") is None:
        conf_args["render_item"] = render_item

    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=get_metadata(),
            **conf_args
        )

        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
