"""Chat model servers: llama-server, OpenRouter and any OpenAI-compatible server."""
