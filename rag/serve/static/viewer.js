const close = () => { props.value = ''; };
element.addEventListener('click', (event) => {
  if (event.target.closest('[data-close]') || event.target.classList.contains('rag-viewer')) close();
});
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && element.querySelector('.rag-viewer')) close();
});
watch('value', () => {
  const quote = element.querySelector('.rag-box, .rag-viewer-body mark');
  if (quote) quote.scrollIntoView({block: 'center', inline: 'nearest'});
  const button = element.querySelector('.rag-close');
  if (button) button.focus({preventScroll: true});
});
