(source, collection) => {
  // Removing cannot be undone from the page (an uploaded copy is deleted too): ask first.
  if (!source) return [null, collection];
  const name = String(source).split(/[\/]/).pop();
  return [window.confirm(`Remove ${name} from the index?`) ? source : null, collection];
}
