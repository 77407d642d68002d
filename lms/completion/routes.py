from flask import Blueprint

bp = Blueprint("completion", __name__)
