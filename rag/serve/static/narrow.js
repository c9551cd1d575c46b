() => {
  // A phone: the chat comes first; the library (Gradio's sidebar covers the whole width there)
  // opens from its toggle.
  if (window.matchMedia('(max-width: 768px)').matches) {
    const toggle = document.querySelector('#rag-sidebar.open .toggle-button');
    if (toggle) toggle.click();
  }
}
