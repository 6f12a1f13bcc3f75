import streamlit as st
st.title("export")
st.info("Not available yet.")
