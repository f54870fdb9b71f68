"""The fastapi-users peer (https://fastapi-users.github.io), set up as its documentation shows, with two
choices made to match identity: argon2id at identity's parameters (m=19456 KiB, t=2, p=1, as
services/identity/passwords.py) and ES256 access tokens of 15 minutes.

It runs in its own environment (var/bench-peers/fastapi-users, bench/peers/fastapi_users.txt), served by
uvicorn with one worker process:
    FASTAPI_USERS_DATABASE_URL=sqlite+aiosqlite:///x.db uvicorn --app-dir bench/peers fastapi_users_app:app
(or postgresql+asyncpg://...). Routes: POST /auth/register, POST /auth/jwt/login (form), GET /users/me.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users.password import PasswordHelper
from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

DATABASE_URL = os.environ["FASTAPI_USERS_DATABASE_URL"]
PASSWORD_HELPER = PasswordHelper(PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19456, parallelism=1,
                                                            hash_len=32, salt_len=16),)))
_key = ec.generate_private_key(ec.SECP256R1())
PRIVATE_PEM = _key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
PUBLIC_PEM = _key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


engine = create_async_engine(DATABASE_URL)
session_maker = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncGenerator[AsyncSession, None]:
    async with session_maker() as session:
        yield session


async def get_user_db(session: AsyncSession = Depends(get_session)):  # noqa: B008 - FastAPI's idiom
    yield SQLAlchemyUserDatabase(session, User)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = "bench-reset-secret"
    verification_token_secret = "bench-verification-secret"


async def get_user_manager(user_db=Depends(get_user_db)):  # noqa: B008 - FastAPI's idiom
    yield UserManager(user_db, PASSWORD_HELPER)


def get_jwt_strategy() -> JWTStrategy:
    return JWTStrategy(secret=PRIVATE_PEM, lifetime_seconds=900, algorithm="ES256", public_key=PUBLIC_PEM)


auth_backend = AuthenticationBackend(name="jwt", transport=BearerTransport(tokenUrl="auth/jwt/login"),
                                     get_strategy=get_jwt_strategy)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])


@asynccontextmanager
async def lifespan(_app: FastAPI):
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth/jwt", tags=["auth"])
app.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth", tags=["auth"])
app.include_router(fastapi_users.get_users_router(UserRead, schemas.BaseUserUpdate), prefix="/users", tags=["users"])


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}
