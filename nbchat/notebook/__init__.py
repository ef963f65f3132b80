"""The notebook layer: magics, rendering and the widget. Parses input, renders output."""
