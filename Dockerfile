FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# DEBUG stays off (the settings' default); collectstatic needs some SECRET_KEY to load the
# settings and uses it for nothing: a throwaway for this one step, not kept in the image.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input -v 0
EXPOSE 8000
CMD ["daphne", "--websocket-max-message-size", "16777216", "--websocket-max-frame-size", "16777216", "-b", "0.0.0.0", "-p", "8000", "eventhub.asgi:application"]
