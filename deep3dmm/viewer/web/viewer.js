// deep3dmm latent-space viewer: three.js rendering, decoding on the server (JSON API).
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { PLYExporter } from 'three/addons/exporters/PLYExporter.js';

const $ = (id) => document.getElementById(id);

// Everything the page holds; exposed as window.viewer for the browser test.
const viewer = {
  ready: false,
  info: null,
  code: [],          // the current latent code (numbers shown in the panel)
  sliders: [],       // slider positions s_k (code = center + sum_k s_k basis_k + residual)
  decodedCode: null, // the code whose decoded mesh is on screen
  pending: 0,        // decode requests in flight
  heat: false,       // the mesh is coloured by its reconstruction error
  positions: () => Array.from(geometry.attributes.position.array),
};
window.viewer = viewer;

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function showError(error) {
  $('status').textContent = error ? String(error.message || error) : '';
}

// ------------------------------------------------------------------ three.js scene
const canvas = $('canvas');
const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(window.devicePixelRatio);
const scene = new THREE.Scene();
scene.background = new THREE.Color(0xf4f4f4);
const camera = new THREE.PerspectiveCamera(30, 1, 0.001, 1000);
scene.add(camera);
scene.add(new THREE.HemisphereLight(0xffffff, 0x606060, 1.6));
const light = new THREE.DirectionalLight(0xffffff, 1.8);
light.position.set(0.3, 0.5, 1);
camera.add(light);  // the light follows the camera while orbiting
const controls = new OrbitControls(camera, canvas);
controls.addEventListener('change', render);
const geometry = new THREE.BufferGeometry();
const material = new THREE.MeshStandardMaterial({
  color: 0xd0d0d0, roughness: 0.7, metalness: 0.0, side: THREE.DoubleSide,
});
const mesh = new THREE.Mesh(geometry, material);
scene.add(mesh);
let colormap = [];  // linear-space THREE.Color per colour-map entry

function render() {
  renderer.render(scene, camera);
}

function resize() {
  const { clientWidth: w, clientHeight: h } = canvas;
  renderer.setSize(w, h, false);
  camera.aspect = w / h;
  camera.updateProjectionMatrix();
  render();
}
window.addEventListener('resize', resize);

function setMesh(vertices, errorsMm = null) {
  geometry.attributes.position.array.set(vertices);
  geometry.attributes.position.needsUpdate = true;
  geometry.computeVertexNormals();
  viewer.heat = errorsMm !== null;
  if (viewer.heat) {
    const colors = geometry.attributes.color.array;
    const top = viewer.info.max_mm;
    const last = colormap.length - 1;
    errorsMm.forEach((e, i) => {
      const c = colormap[Math.max(0, Math.min(last, Math.round((e / top) * last)))];
      colors[3 * i] = c.r; colors[3 * i + 1] = c.g; colors[3 * i + 2] = c.b;
    });
    geometry.attributes.color.needsUpdate = true;
  }
  if (material.vertexColors !== viewer.heat) {
    material.vertexColors = viewer.heat;
    material.color.set(viewer.heat ? 0xffffff : 0xd0d0d0);
    material.needsUpdate = true;
  }
  $('colorbar').hidden = !viewer.heat;
  render();
}

// ------------------------------------------------------------------ latent code and sliders
const dot = (a, b) => a.reduce((sum, x, i) => sum + x * b[i], 0);

function showCode() {
  $('code').textContent = '[' + viewer.code.map((v) => v.toFixed(4)).join(', ') + ']';
}

function setCode(code) {
  // Hold ``code`` exactly; place each slider at its coordinate along its direction.
  const { center, basis } = viewer.info.sliders;
  viewer.code = code.slice();
  const offset = code.map((v, j) => v - center[j]);
  viewer.sliders = basis.map((row) => dot(offset, row) / dot(row, row));
  document.querySelectorAll('#sliders input').forEach((input, k) => {
    input.value = viewer.sliders[k];
    input.nextElementSibling.textContent = viewer.sliders[k].toFixed(2);
  });
  showCode();
}

let dirty = false;
async function requestDecode() {
  // Decode the current code; while a request is in flight, only the latest code is sent next.
  if (viewer.pending > 0) { dirty = true; return; }
  viewer.pending += 1;
  const code = viewer.code.slice();
  try {
    const { vertices } = await api('/api/decode', { code });
    setMesh(vertices);
    viewer.decodedCode = code;
    showError(null);
  } catch (error) {
    showError(error);
  } finally {
    viewer.pending -= 1;
  }
  if (dirty) { dirty = false; await requestDecode(); }
}

function buildSliders() {
  const { basis, mode } = viewer.info.sliders;
  $('slider-mode').textContent = mode === 'pca'
    ? `(${basis.length} principal directions of the training codes, in std)`
    : '(one per dimension, in std of the training codes)';
  const box = $('sliders');
  basis.forEach((row, k) => {
    const div = document.createElement('div');
    div.className = 'slider';
    const name = mode === 'pca' ? `PC${k + 1}` : `z${k}`;
    div.innerHTML = `<label for="s${k}">${name}</label>` +
      `<input id="s${k}" type="range" min="-3" max="3" step="0.01" value="0"><span>0.00</span>`;
    const input = div.querySelector('input');
    input.addEventListener('input', () => {
      const value = parseFloat(input.value);
      const delta = value - viewer.sliders[k];
      viewer.sliders[k] = value;
      viewer.code = viewer.code.map((v, j) => v + delta * row[j]);
      input.nextElementSibling.textContent = value.toFixed(2);
      showCode();
      requestDecode();
    });
    box.appendChild(div);
  });
}

// ------------------------------------------------------------------ interpolation and errors
let endpoints = null;  // {a, b, codeA, codeB}
let playing = false;

async function interpolationCodes() {
  const a = $('interp-a').value, b = $('interp-b').value;
  if (!endpoints || endpoints.a !== a || endpoints.b !== b) {
    const [ea, eb] = await Promise.all([api('/api/encode', { id: a }), api('/api/encode', { id: b })]);
    endpoints = { a, b, codeA: ea.code, codeB: eb.code };
  }
  return endpoints;
}

async function showT(t) {
  const { codeA, codeB } = await interpolationCodes();
  setCode(codeA.map((v, j) => (1 - t) * v + t * codeB[j]));
  await requestDecode();
}

async function play() {
  if (playing) { playing = false; return; }
  playing = true;
  $('play').textContent = 'Stop';
  try {
    for (let step = 0; step <= 40 && playing; step += 1) {
      const t = step / 40;
      $('interp-t').value = t;
      await showT(t);
    }
  } catch (error) {
    showError(error);
  }
  playing = false;
  $('play').textContent = 'Play';
}

async function reconstruct() {
  try {
    const result = await api('/api/reconstruct', { id: $('recon-id').value });
    setCode(result.code);
    setMesh(result.vertices, result.errors_mm);
    viewer.decodedCode = result.code;
    $('recon-text').textContent = `${result.label}: mean error ${result.mean_mm.toFixed(3)} mm`;
    showError(null);
  } catch (error) {
    showError(error);
  }
}

function savePly() {
  new PLYExporter().parse(mesh, (text) => {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([text], { type: 'application/octet-stream' }));
    link.download = `deep3dmm_${viewer.info.run}.ply`;
    link.click();
    URL.revokeObjectURL(link.href);
  }, { binary: false });
}

// ------------------------------------------------------------------ start
async function start() {
  const info = await api('/api/info');
  viewer.info = info;
  $('run-name').textContent = info.run;
  colormap = info.colormap.map(([r, g, b]) => new THREE.Color().setRGB(r, g, b, THREE.SRGBColorSpace));
  const stops = info.colormap.filter((_, i) => i % 32 === 0 || i === info.colormap.length - 1)
    .map(([r, g, b]) => `rgb(${r * 255},${g * 255},${b * 255})`);
  $('colorbar-ramp').style.background = `linear-gradient(to right, ${stops.join(',')})`;
  $('colorbar-max').textContent = `${info.max_mm} mm`;
  const v = info.num_vertices;
  geometry.setAttribute('position', new THREE.BufferAttribute(new Float32Array(3 * v), 3));
  geometry.setAttribute('color', new THREE.BufferAttribute(new Float32Array(3 * v), 3));
  geometry.setIndex(info.faces);
  buildSliders();
  setCode(info.sliders.center);
  if (!info.dataset) document.querySelectorAll('.needs-data').forEach((s) => s.classList.add('disabled'));
  $('reset').addEventListener('click', () => { setCode(info.sliders.center); requestDecode(); });
  $('save').addEventListener('click', savePly);
  $('play').addEventListener('click', play);
  $('interp-t').addEventListener('input', () => showT(parseFloat($('interp-t').value)).catch(showError));
  $('recon').addEventListener('click', reconstruct);
  await requestDecode();
  geometry.computeBoundingSphere();
  const { center, radius } = geometry.boundingSphere;
  controls.target.copy(center);
  camera.position.set(center.x, center.y, center.z + (1.15 * radius) / Math.sin((camera.fov * Math.PI) / 360));
  camera.near = radius / 100; camera.far = radius * 100;
  controls.update();
  resize();
  viewer.ready = true;
}

start().catch(showError);
