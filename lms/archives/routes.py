from flask import Blueprint

bp = Blueprint("archives", __name__)
